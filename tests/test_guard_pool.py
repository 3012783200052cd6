"""The guard pool: quick scans batched per run, slow ones side by side, timeouts per scan."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence
from typing import ClassVar

from guardproxy.engine.pool import QUICK_SCAN_SECONDS, GuardPool, PoolResult, PoolScan, ScanTimes
from guardproxy.guards.api import Finding, GuardConfig, GuardContext, GuardKind, Segment


class Sleeper:
    """Sleeps (which releases the GIL, like native code or an upstream call) and notes when and where."""

    Config: ClassVar[type[GuardConfig]] = GuardConfig
    kind: ClassVar[GuardKind] = "cpu"

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.spans: list[tuple[int, float, float]] = []  # thread, start, end

    def warm(self) -> None:
        return None

    def scan(self, segments: Sequence[Segment], context: GuardContext) -> list[Finding]:
        started = time.perf_counter()
        time.sleep(self.seconds)
        self.spans.append((threading.get_ident(), started, time.perf_counter()))
        return [Finding("slept", 1.0, 0)]


def scans(*guards: tuple[Sleeper, float | None]) -> dict[int, PoolScan]:
    """Pool scans of these guards, with their recent scan time already known (or not: None)."""
    return {i: PoolScan(g, [Segment("text")], ScanTimes(recent)) for i, (g, recent) in enumerate(guards)}


async def run(
    pool: GuardPool, work: dict[int, PoolScan], timeouts: Sequence[float] = (2.0, 2.0)
) -> dict[int, PoolResult]:
    return await pool.submit(work, dict(enumerate(timeouts)), GuardContext("output")).results()


def overlap(a: Sleeper, b: Sleeper) -> bool:
    (_, a_start, a_end), (_, b_start, b_end) = a.spans[-1], b.spans[-1]
    return a_start < b_end and b_start < a_end


async def test_quick_scans_of_a_run_go_in_one_submission() -> None:
    pool, a, b = GuardPool(4), Sleeper(0.005), Sleeper(0.005)
    results = await run(pool, scans((a, 0.001), (b, 0.001)))
    pool.close()
    assert [r.findings for r in results.values()] == [[Finding("slept", 1.0, 0)]] * 2
    assert a.spans[0][0] == b.spans[0][0] and not overlap(a, b)  # one thread, one after the other


async def test_slow_or_unmeasured_scans_run_side_by_side() -> None:
    pool = GuardPool(4)
    for recent in (0.05, None):
        a, b = Sleeper(0.05), Sleeper(0.05)
        await run(pool, scans((a, recent), (b, recent)))
        assert overlap(a, b)
    pool.close()


async def test_an_overrunning_batched_scan_does_not_hold_up_the_rest_of_its_batch() -> None:
    pool, stuck, quick = GuardPool(2), Sleeper(3.0), Sleeper(0.001)
    work = scans((stuck, 0.001), (quick, 0.001))
    results = await run(pool, work, timeouts=(0.2, 2.0))
    # An order, not a duration: the batch answered while the overrunning scan was still asleep.
    assert stuck.spans == [] and len(quick.spans) == 1
    assert results[0].failure is not None and results[0].failure[0] == "timeout"
    assert results[1].failure is None and results[1].findings
    assert not work[0].times.quick  # the overrun counts: it will have a submission of its own next time
    await asyncio.sleep(1.0)  # let the stuck scan finish before the pool goes
    pool.close()


def test_scan_times_follow_recent_scans() -> None:
    times = ScanTimes()
    assert not times.quick  # unmeasured
    times.add(QUICK_SCAN_SECONDS / 2)
    assert times.quick
    for _ in range(5):
        times.add(QUICK_SCAN_SECONDS * 4)
    assert not times.quick


async def test_a_cancelled_run_never_starts_the_rest_of_its_batch() -> None:
    pool, first, second = GuardPool(2), Sleeper(0.2), Sleeper(0.001)
    task = asyncio.create_task(run(pool, scans((first, 0.001), (second, 0.001))))
    await asyncio.sleep(0.05)  # the batch is inside the first scan
    task.cancel()
    await asyncio.sleep(0.3)
    pool.close()
    assert first.spans and not second.spans


class Worker:
    """Works in 10 ms steps, checking between them whether the pool still waits for it."""

    Config: ClassVar[type[GuardConfig]] = GuardConfig
    kind: ClassVar[GuardKind] = "cpu"

    def __init__(self, steps: int) -> None:
        self.steps = steps
        self.done = 0
        self.finished = threading.Event()

    def warm(self) -> None:
        return None

    def scan(self, segments: Sequence[Segment], context: GuardContext) -> list[Finding]:
        from guardproxy.guards.abandonment import raise_if_abandoned

        try:
            for _ in range(self.steps):
                raise_if_abandoned()
                time.sleep(0.01)
                self.done += 1
        finally:
            self.finished.set()
        return [Finding("worked", 1.0, 0)]


async def test_an_overrun_scan_stops_at_its_next_check_instead_of_running_to_its_end() -> None:
    pool, slow, other = GuardPool(2), Worker(300), Worker(3)
    results = await run(pool, {0: PoolScan(slow, [Segment("t")], ScanTimes(None)),
                               1: PoolScan(other, [Segment("t")], ScanTimes(None))}, timeouts=(0.1, 2.0))
    assert results[0].failure is not None and results[0].failure[0] == "timeout"
    assert results[1].findings == [Finding("worked", 1.0, 0)] and other.done == 3  # the other scan ran whole
    assert await asyncio.to_thread(slow.finished.wait, 1.0)  # not the 3 s its 300 steps would take
    assert slow.done < 50
    pool.close()


async def test_a_cancelled_run_abandons_its_scans() -> None:
    pool, slow = GuardPool(1), Worker(300)
    task = asyncio.ensure_future(run(pool, {0: PoolScan(slow, [Segment("t")], ScanTimes(None))}))
    await asyncio.sleep(0.1)
    task.cancel()
    assert await asyncio.to_thread(slow.finished.wait, 1.0)
    assert slow.done < 50
    pool.close()

