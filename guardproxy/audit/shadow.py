"""Running a live policy's shadow on the same requests, after the live answer has gone.

A shadow job is queued when a request ends (sampled at the live policy's ``shadow_sample``) and
run by one task on the event loop, one job at a time, through the same engine (its findings
caches are shared, so an entry the live chain already ran on the same text is not scanned
again). It never touches the live answer: nothing it finds is applied. Shadow guards get no
upstream client (like ``guardproxy eval``): a judge or moderation guard in a shadow fails
through its ``on_error``. A full queue drops the job and counts it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass

from guardproxy.audit.build import shadow_guards
from guardproxy.audit.record import ShadowRecord
from guardproxy.engine import ChainResult, Engine, Verdict, worst
from guardproxy.guards import GuardContext, Segment, Stage
from guardproxy.policy import ShadowPolicy

log = logging.getLogger("guardproxy.shadow")
DEFAULT_QUEUE = 256


@dataclass(frozen=True, slots=True)
class ShadowJob:
    shadow: ShadowPolicy
    live_chain: str
    segments: dict[Stage, list[Segment]]  # the raw text of each stage the live request had
    live_stages: dict[str, Verdict]
    endpoint: str
    model: str | None
    documents: tuple[str, ...]
    done: Callable[[ShadowRecord | None, dict[str, Verdict]], None]  # the record, and each stage's shadow verdict


class ShadowRunner:
    def __init__(self, engine: Engine, queue_size: int = DEFAULT_QUEUE,
                 on_drop: Callable[[], None] | None = None) -> None:
        self._engine = engine
        self._queue: asyncio.Queue[ShadowJob] = asyncio.Queue(queue_size)
        self._on_drop = on_drop
        self._task: asyncio.Task[None] | None = None
        self.dropped = 0
        self.ran = 0

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._work(), name="guardproxy-shadow")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def submit(self, job: ShadowJob) -> bool:
        try:
            self._queue.put_nowait(job)
        except asyncio.QueueFull:
            self.dropped += 1
            if self._on_drop is not None:
                self._on_drop()
            return False
        return True

    async def idle(self) -> None:
        """Wait until every queued job has run (tests, and a clean shutdown)."""
        await self._queue.join()

    async def _work(self) -> None:
        while True:
            job = await self._queue.get()
            try:
                record, verdicts = await self.run(job)
                job.done(record, verdicts)
            except Exception as exc:  # a shadow's failure must never reach live traffic; said, without content
                log.error("shadow policy %s failed on a request: %s", job.shadow.policy.name, type(exc).__name__)
                if self._on_drop is not None:
                    self._on_drop()
            finally:
                self._queue.task_done()

    async def run(self, job: ShadowJob) -> tuple[ShadowRecord, dict[str, Verdict]]:
        policy, chain_name = job.shadow.policy, job.shadow.chain_for(job.live_chain)
        chain = policy.chains[chain_name]
        results: dict[str, ChainResult] = {}
        for stage, segments in job.segments.items():
            entries = chain.input if stage == "input" else chain.output
            if not entries or not segments:
                continue
            context = GuardContext(stage, job.endpoint, job.model, job.documents)  # both stages, as live
            results[stage] = await self._engine.run(policy, entries, segments, context)
        self.ran += 1
        verdicts: dict[str, Verdict] = {stage: result.verdict for stage, result in results.items()}
        for live_stage in job.live_stages:
            verdicts.setdefault(live_stage, "pass")
        final = worst(*verdicts.values()) if verdicts else "pass"
        record = ShadowRecord(policy.name, job.shadow.tag.rpartition("@")[2], chain_name, final, dict(verdicts),
                              shadow_guards(policy, chain_name, results))
        return record, verdicts
