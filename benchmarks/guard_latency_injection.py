"""Per-request latency of ``guard: injection`` (``scan`` alone, in this thread): p50 and p99, CPU p50.

A 1,000-character text (six sentences of an ordinary request, numbered so every request is new) as a
user message (direct) and as a tool result (indirect), two ways:

- cold: every window is new, so MiniLM runs on all of them;
- cached: the windows' vectors are already in the process's cache, as when another guard (the toxicity
  head, which embeds the same windows) or an earlier turn of the chat computed them for the same text.
  What is left is the structural signals and the two heads.

    .venv/bin/python benchmarks/guard_latency_injection.py [--requests 200]
"""

from __future__ import annotations

import argparse
import statistics
import time

from guardproxy.guards import GuardContext, Segment
from guardproxy.guards.injection.config import InjectionConfig
from guardproxy.guards.injection.guard import InjectionGuard

SENTENCES = (
    "Could you help me plan a three-day trip to Lisbon in May for my parents and me?",
    "We would like to see the old town, the castle and eat somewhere nice by the river.",
    "My budget is about 600 euros each without the flights, and I wonder whether that is realistic.",
    "Also, which neighbourhood is quiet at night but still close to the trams and the metro?",
    "My father walks slowly, so we would prefer short distances and a hotel with a lift.",
    "Please list a few restaurants that serve fish, and say which ones need a reservation.",
    "Finally, is it worth buying the Lisboa Card for three days, or do single tickets cost less?",
)


def text_of(request: int) -> str:
    """About 1,000 characters, different for every request."""
    parts, k = [], 0
    while sum(len(p) + 1 for p in parts) < 990:
        parts.append(f"({request}.{k}) {SENTENCES[(request + k) % len(SENTENCES)]}")
        k += 1
    return " ".join(parts)[:1000]


def measure(guard: InjectionGuard, role: str, requests: int, cached: bool, first: int) -> tuple[float, float, float]:
    """Wall-clock p50 and p99 and CPU p50 (this thread) in ms, on texts ``first``, ``first + 1``, ..."""
    context = GuardContext("input")
    seconds, cpu = [], []
    for request in range(first, first + requests):
        segment = Segment(text_of(request), ("messages", 0, "content"), role)
        if cached:
            guard.scan([segment], context)  # another guard, or an earlier turn, embedded these windows
        started, cpu_started = time.perf_counter(), time.thread_time()
        guard.scan([segment], context)
        seconds.append(time.perf_counter() - started)
        cpu.append(time.thread_time() - cpu_started)
    cuts = statistics.quantiles(seconds, n=100)
    return statistics.median(seconds) * 1000, cuts[98] * 1000, statistics.median(cpu) * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    guard = InjectionGuard(InjectionConfig())
    guard.warm()
    print(f"1,000 characters ({len(text_of(0))}), {args.requests} requests each")
    print(f"{'segment':<22} {'embeddings':<10} {'p50 ms':>8} {'p99 ms':>8} {'cpu p50':>8}")
    segments = (("user", "user message (direct)"), ("tool", "tool result (indirect)"))
    runs = [(role, name, cached) for role, name in segments for cached in (False, True)]
    for number, (role, name, cached) in enumerate(runs):
        p50, p99, cpu = measure(guard, role, args.requests, cached, first=(number + 1) * 100_000)
        print(f"{name:<22} {'cached' if cached else 'cold':<10} {p50:>8.2f} {p99:>8.2f} {cpu:>8.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
