"""Running one chain stage over labelled items, one at a time, timing each.

Items run sequentially on one event loop so the latency of an item is the
latency a single request would see, not a share of a crowded pool. Guards are
built and warmed before the clock starts, so model loading is not counted.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass

from guardproxy.audit.placeholders import credit_masked
from guardproxy.engine import Engine, worst
from guardproxy.evaluation.datasets import LabelledItem, LabelledSpan
from guardproxy.guards import GuardContext, Segment, Stage
from guardproxy.policy import GuardEntry, Policy


@dataclass(frozen=True, slots=True)
class Observation:
    """What the chain did with one item.

    ``fired`` is true when any guard made a decision, a fail-closed guard
    failure included. ``spans`` are the decisions that carry a span.
    ``failures`` counts guards that raised or timed out (see ``on_error``).
    ``verdict`` and ``firings`` (entry name, label) are what reviewed rows are scored on; a
    reviewed row's live findings are credited from the marks they left (``audit.placeholders``).
    """

    fired: bool
    spans: tuple[LabelledSpan, ...]
    failures: int
    seconds: float
    verdict: str = "pass"
    firings: tuple[tuple[str, str], ...] = ()


def run_items(
    policy: Policy, entries: Sequence[GuardEntry], items: Sequence[LabelledItem], stage: Stage, guard_threads: int
) -> list[Observation]:
    """Blocking: warms the policy's guards, then runs every item through ``entries``."""
    engine = Engine(guard_threads=guard_threads)
    try:
        engine.prepare([policy])
        return asyncio.run(_run_all(engine, policy, entries, items, stage))
    finally:
        engine.close()


async def _run_all(
    engine: Engine, policy: Policy, entries: Sequence[GuardEntry], items: Sequence[LabelledItem], stage: Stage
) -> list[Observation]:
    role = "user" if stage == "input" else "assistant"
    observations = []
    for item in items:
        segments = [Segment(item.text, ("text",), role)]
        prompt = () if item.question is None else (Segment(item.question, ("question",), "user"),)
        context = GuardContext(stage, "eval", None, item.documents, prompt)
        started = time.perf_counter()
        result = await engine.run(policy, entries, segments, context)
        seconds = time.perf_counter() - started
        spans = tuple(LabelledSpan(d.start, d.end, d.label) for d in result.decisions
                      if d.start is not None and d.end is not None)
        firings = {(d.name, d.label) for d in result.decisions}
        credited, verdict = credit_masked(item.live_findings, policy, entries, [item.text], firings)
        observations.append(Observation(bool(firings or credited), spans, len(result.failures), seconds,
                                        worst(result.verdict, verdict), tuple(sorted(firings | set(credited)))))
    return observations
