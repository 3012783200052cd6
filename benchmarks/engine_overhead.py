"""What ``Engine.run`` costs beyond its guards' own scans, for the default policy's chains.

Each run scans a fresh text (a run number is prefixed, so no cache answers for
it; the input stage's system message is the same every time, as in real
traffic): the input chain gets that system message and a user prompt of
``--chars`` characters, the output chain an answer of the same length. Every
guard's ``scan`` is wrapped to time itself where it runs (in the guard pool for
CPU-bound guards). Columns, per run:

- ``p50``, ``p95``: ``Engine.run`` wall time;
- ``scans p50``: the sum of its guards' scan wall times (scans that run side by
  side in the pool both count), and ``p50 - scans`` the median difference: the
  pool hop, waiting for a pool thread or the GIL, and building the decision;
- ``cpu/run``: process CPU time (all threads) per run, and ``scan cpu`` the
  part spent inside scans; the rest is the engine (and this harness);
- ``runs/s``, and ``loop lag p99``: how late a 1 ms timer on the same event loop
  fires, i.e. what any other request on the loop waits.

Concurrency 1 shows the per-run overhead; concurrency 16 (16 runs in flight on
one event loop, as under load) shows queueing for the pool and the GIL, and the
throughput. CPU time moves much less than wall time when other processes load
the machine; compare rows from interleaved, repeated runs.

    .venv/bin/python benchmarks/engine_overhead.py [--runs 300] [--chars 200 2000] [--concurrency 1 16]
        [--switch-interval-ms 5] [--stage input output]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import statistics
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from guardproxy.engine import Engine
from guardproxy.guards import Finding, GuardContext, Segment, Stage
from guardproxy.policy.loader import load_policy_set
from guardproxy.policy.schema import GuardEntry, Policy

RUN_NUMBERS = itertools.count()  # every run of the process scans a text no earlier run saw
POLICY = Path(__file__).resolve().parent.parent / "policies" / "default.yaml"
SYSTEM = "You are a careful assistant for the customer records team. Answer briefly."
PROSE = (
    "Hi, I'm Maria Gonzalez and I need help with my account. Send the invoice to maria.gonzalez@brightfield.io "
    "or call (415) 555-0182 if anything is unclear. The order was placed last Tuesday and has not arrived yet, "
    "although the tracking page says it was delivered. Could you check with the courier and tell me what to do "
    "next? I would also like to change the delivery address to 742 Evergreen Terrace, Springfield, IL 62704 for "
    "future orders, and please note that the card ending in 4444 has expired. Thanks a lot for your patience. "
)


def text_of(chars: int, run: int) -> str:
    prefix = f"(#{run}) "
    body = (PROSE * (chars // len(PROSE) + 1))[: chars - len(prefix)]
    return prefix + body[: body.rfind(" ")] if " " in body else prefix + body


class ScanClock:
    """Sums each run's guard scan time, wherever the scan runs (keyed by the run's context),
    and the CPU time all scans took in their threads."""

    def __init__(self) -> None:
        self.seconds: dict[int, float] = defaultdict(float)
        self.cpu = 0.0
        self._lock = threading.Lock()

    def wrap(self, scan: Callable[[Sequence[Segment], GuardContext], list[Finding]]) -> Callable[..., Any]:
        def timed(segments: Sequence[Segment], context: GuardContext) -> list[Finding]:
            started, cpu = time.perf_counter(), time.thread_time()
            try:
                return scan(segments, context)
            finally:
                elapsed, cpu = time.perf_counter() - started, time.thread_time() - cpu
                with self._lock:
                    self.seconds[id(context)] += elapsed
                    self.cpu += cpu
        return timed


def segments_for(stage: Stage, chars: int, run: int) -> list[Segment]:
    if stage == "input":
        return [Segment(SYSTEM, ("messages", 0, "content"), "system"),
                Segment(text_of(chars, run), ("messages", 1, "content"), "user")]
    return [Segment(text_of(chars, run), ("choices", 0, "message", "content"), "assistant")]


async def measure(engine: Engine, clock: ScanClock, policy: Policy, entries: Sequence[GuardEntry], stage: Stage,
                  chars: int, runs: int, concurrency: int) -> dict[str, float]:
    walls: list[float] = []
    scans: list[float] = []
    numbers = itertools.islice(RUN_NUMBERS, runs)

    async def worker() -> None:
        while (run := next(numbers, None)) is not None:
            context = GuardContext(stage)
            segments = segments_for(stage, chars, run)
            started = time.perf_counter()
            await engine.run(policy, entries, segments, context)
            wall = time.perf_counter() - started
            walls.append(wall)
            scans.append(clock.seconds.pop(id(context), 0.0))

    lags: list[float] = []
    probe = asyncio.create_task(loop_lag(lags))
    cpu, scan_cpu, started = time.process_time(), clock.cpu, time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed, cpu, scan_cpu = time.perf_counter() - started, time.process_time() - cpu, clock.cpu - scan_cpu
    probe.cancel()
    return {"p50": statistics.median(walls) * 1000, "p95": statistics.quantiles(walls, n=20)[18] * 1000,
            "scans": statistics.median(scans) * 1000,
            "overhead": statistics.median(w - s for w, s in zip(walls, scans, strict=True)) * 1000,
            "cpu": cpu / runs * 1000, "scan_cpu": scan_cpu / runs * 1000, "rps": runs / elapsed,
            "lag": statistics.quantiles(lags, n=100)[98] * 1000 if len(lags) > 1 else 0.0}


async def loop_lag(lags: list[float]) -> None:
    """How late a 1 ms timer fires: what any other request on this event loop waits for."""
    while True:
        started = time.perf_counter()
        await asyncio.sleep(0.001)
        lags.append(time.perf_counter() - started - 0.001)


async def main_async(args: argparse.Namespace) -> None:
    policy = load_policy_set(POLICY).policies[0].policy
    engine = Engine()
    engine.prepare([policy])
    clock = ScanClock()
    chain = policy.chains["default"]
    guards = {id(g): g for g in (engine.guard_for(e) for e in (*chain.input, *chain.output))}  # shared by stages
    for guard in guards.values():
        guard.scan = clock.wrap(guard.scan)  # type: ignore[method-assign]
    print(f"switch interval {sys.getswitchinterval() * 1000:g} ms; {args.runs} runs per row; ms per run")
    print(f"{'stage':<7} {'chars':>5} {'conc':>4} {'p50':>7} {'p95':>7} {'scans p50':>9} {'p50 - scans':>11} "
          f"{'cpu/run':>8} {'scan cpu':>8} {'runs/s':>7} {'loop lag p99':>12}")
    for stage in args.stage:
        entries = chain.input if stage == "input" else chain.output
        for chars in args.chars:
            for concurrency in args.concurrency:
                await measure(engine, clock, policy, entries, stage, chars, 20, concurrency)  # warm
                row = await measure(engine, clock, policy, entries, stage, chars, args.runs, concurrency)
                print(f"{stage:<7} {chars:>5} {concurrency:>4} {row['p50']:>7.2f} {row['p95']:>7.2f} "
                      f"{row['scans']:>9.2f} {row['overhead']:>11.2f} {row['cpu']:>8.2f} {row['scan_cpu']:>8.2f} "
                      f"{row['rps']:>7.0f} {row['lag']:>12.2f}", flush=True)
    engine.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--chars", type=int, nargs="+", default=[200, 2000])
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--stage", nargs="+", choices=["input", "output"], default=["input", "output"])
    parser.add_argument("--switch-interval-ms", type=float, default=None,
                        help="sys.setswitchinterval before measuring (CPython's default is 5 ms)")
    args = parser.parse_args()
    if args.switch_interval_ms is not None:
        sys.setswitchinterval(args.switch_interval_ms / 1000)
    asyncio.run(main_async(args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
