"""The bounded thread pool ``cpu`` guards scan in, batched per request.

A run's quick scans (guards whose recent scans took under ``QUICK_SCAN_SECONDS``)
go to the pool in one submission and run one after another in one thread: a hop
to a pool thread and back costs about as much as a quick scan, and quick scans
side by side gain nothing under the GIL but handoffs. Slower guards, and guards
not measured yet, get a submission each, so a slow or waiting guard (one that
calls the upstream, or releases the GIL in native code) never holds up the rest.

Each scan keeps its own timeout, counted from submission. A scan that overruns
it is abandoned (its thread finishes it unobserved, as with
``asyncio.wait_for``), and the scans still queued behind it in its batch are
taken back and submitted on their own. If the run is cancelled, scans that have
not started never start. A scan the run stops waiting for, overrun or cancelled,
is told so (``abandonment.py``) and stops at its guard's next check.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
import time
from collections.abc import Awaitable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal

from guardproxy.engine.failures import describe_error
from guardproxy.guards import Finding, Guard, GuardContext, Segment
from guardproxy.guards.abandonment import ScanAbandoned, abandonable

QUICK_SCAN_SECONDS = 0.002
_WEIGHT = 0.2  # of the newest scan in a guard's recent scan time


@dataclass
class ScanTimes:
    """A guard's recent scan time (exponentially weighted), kept on the event loop."""

    recent: float | None = None

    def add(self, seconds: float) -> None:
        self.recent = seconds if self.recent is None else (1 - _WEIGHT) * self.recent + _WEIGHT * seconds

    @property
    def quick(self) -> bool:
        return self.recent is not None and self.recent < QUICK_SCAN_SECONDS


@dataclass(frozen=True, slots=True)
class PoolScan:
    guard: Guard
    segments: Sequence[Segment]
    times: ScanTimes
    abandoned: threading.Event = field(default_factory=threading.Event)


Failure = tuple[Literal["error", "timeout"], str]


def overrun(timeout: float) -> Failure:
    """The failure of a scan that did not finish within ``timeout`` seconds."""
    return "timeout", f"no answer within {timeout * 1000:.0f} ms"


def findings_now(found: list[Finding] | Awaitable[list[Finding]]) -> list[Finding]:
    """A scan's findings, from a guard that must not await (``kind`` inline or cpu)."""
    if inspect.isawaitable(found):
        if inspect.iscoroutine(found):
            found.close()  # never awaited, and not reported as such
        raise TypeError("scan returned an awaitable; a guard that awaits must declare kind = 'io'")
    return found


@dataclass
class PoolResult:
    """A scan's findings, or why there are none (``failure``), and the seconds since submission."""

    findings: list[Finding] = field(default_factory=list)
    failure: Failure | None = None
    seconds: float = 0.0


_Done = tuple[list[Finding], float, float]  # findings, scan seconds, finished at (perf_counter)


def _scan(scan: PoolScan, context: GuardContext) -> _Done:
    started = time.perf_counter()
    with abandonable(scan.abandoned):
        try:
            findings = findings_now(scan.guard.scan(scan.segments, context))
        except ScanAbandoned:
            findings = []  # nobody waits for them any more
    finished = time.perf_counter()
    return findings, finished - started, finished


def _scan_batch(batch: Sequence[tuple[PoolScan, Future[_Done]]], context: GuardContext) -> None:
    for scan, future in batch:
        if not future.set_running_or_notify_cancel():
            continue  # taken back by the loop after a scan before it overran its timeout
        try:
            future.set_result(_scan(scan, context))
        except BaseException as exc:  # delivered to the loop, which turns it into on_error
            future.set_exception(exc)


class GuardPool:
    def __init__(self, threads: int) -> None:
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="guard")

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

    def submit(self, scans: Mapping[int, PoolScan], timeouts: Mapping[int, float], context: GuardContext) -> PoolRun:
        """Start every scan now (quick ones as one batch); ``results()`` waits for them."""
        return PoolRun(self._executor, scans, timeouts, context)


class PoolRun:
    """One engine run's scans in the pool, each under its own timeout.

    Every scan has a concurrent future; the loop is woken by the scans submitted
    on their own and once by the batch as a whole, not by each batched scan."""

    def __init__(
        self, executor: ThreadPoolExecutor, scans: Mapping[int, PoolScan], timeouts: Mapping[int, float],
        context: GuardContext,
    ) -> None:
        self._executor = executor
        self._scans = scans
        self._timeouts = timeouts
        self._context = context
        self._submitted = time.perf_counter()
        self._futures: dict[int, Future[_Done]] = {}
        self._batched: set[int] = set()
        self._wakers: set[asyncio.Future[Any]] = set()
        quick = [index for index, scan in scans.items() if scan.times.quick]
        if len(quick) > 1:
            self._batched = set(quick)
            self._futures = {index: Future() for index in quick}
            batch = executor.submit(_scan_batch, [(scans[i], self._futures[i]) for i in quick], context)
            self._wakers.add(asyncio.wrap_future(batch))
        for index in scans:
            if index not in self._batched:
                self._submit(index)

    def _submit(self, index: int) -> None:
        scan = self._scans[index]
        self._futures[index] = self._executor.submit(_scan, scan, self._context)
        self._wakers.add(asyncio.wrap_future(self._futures[index]))

    async def results(self) -> dict[int, PoolResult]:
        results: dict[int, PoolResult] = {}
        try:
            while True:
                now = time.perf_counter()
                for index, future in self._futures.items():
                    if index in results:
                        continue
                    if future.done() and not future.cancelled():
                        results[index] = self._result(index, future)
                    elif now - self._submitted >= self._timeouts[index]:
                        results[index] = self._overran(index, now)
                unfinished = [index for index in self._futures if index not in results]
                if not unfinished:
                    return results
                wait = self._submitted + min(self._timeouts[index] for index in unfinished) - now
                woken, self._wakers = await asyncio.wait(self._wakers, timeout=wait,
                                                         return_when=asyncio.FIRST_COMPLETED)
                for waker in woken:  # their errors are read from the scans' own futures; marked read here
                    if not waker.cancelled():
                        waker.exception()
        finally:
            for index, future in self._futures.items():
                if index not in results:
                    future.cancel()
                    self._scans[index].abandoned.set()
            for waker in self._wakers:  # nobody reads what an abandoned scan ends with
                waker.cancel()

    def _result(self, index: int, future: Future[_Done]) -> PoolResult:
        error = future.exception()
        if error is not None:
            return PoolResult(failure=("error", describe_error(error)), seconds=time.perf_counter() - self._submitted)
        findings, scan_seconds, finished = future.result()
        self._scans[index].times.add(scan_seconds)
        return PoolResult(findings, None, finished - self._submitted)

    def _overran(self, index: int, now: float) -> PoolResult:
        """Abandon a scan past its timeout; if it was batched, submit on their own the
        scans of its batch that have not started."""
        self._futures[index].cancel()
        self._scans[index].abandoned.set()
        self._scans[index].times.add(self._timeouts[index])
        if index in self._batched:
            batch, self._batched = self._batched - {index}, set()
            for other in batch:
                if self._futures[other].cancel():
                    self._submit(other)
        return PoolResult(failure=overrun(self._timeouts[index]), seconds=now - self._submitted)
