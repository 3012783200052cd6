"""Per-request latency of ``guard: toxicity`` (``scan`` alone, in this thread): p50 and p95, and CPU p50.

Requests of 1 and of 20 segments, each segment a different ~150-character chat message (two or three
sentences), so the embedding cache never hits. The guard is warmed first. Configurations: the default
(profanity + implicit head), ``implicit: false`` (profanity only, as the default policy runs it) and
``detector: encoder`` (the fine-tuned MiniLM classifier). Also ms per 1,000 characters scanned.

    .venv/bin/python benchmarks/guard_latency_toxicity.py [--requests 200]
"""

from __future__ import annotations

import argparse
import statistics
import time

from guardproxy.guards import GuardContext, Segment
from guardproxy.guards.toxicity.config import ToxicityConfig
from guardproxy.guards.toxicity.guard import ToxicityGuard

SENTENCES = (
    "Could you help me plan a three-day trip to Lisbon in May?",
    "I would like to see the old town and eat somewhere nice by the river.",
    "My budget is about 600 euros without the flights, is that realistic?",
    "Also, which neighbourhood is quiet at night but close to the trams?",
)


def message(request: int, segment: int) -> str:
    start = (request + segment) % len(SENTENCES)
    return f"(#{request}.{segment}) " + " ".join(SENTENCES[(start + k) % len(SENTENCES)] for k in range(2))


def measure(guard: ToxicityGuard, segments: int, requests: int) -> tuple[float, float, float]:
    """Wall-clock p50 and p95 and CPU p50 (this thread) in ms."""
    context = GuardContext("input")
    seconds, cpu = [], []
    for request in range(requests):
        batch = [Segment(message(request, s), ("messages", s, "content"), "user") for s in range(segments)]
        started, cpu_started = time.perf_counter(), time.thread_time()
        guard.scan(batch, context)
        seconds.append(time.perf_counter() - started)
        cpu.append(time.thread_time() - cpu_started)
    cuts = statistics.quantiles(seconds, n=20)
    return statistics.median(seconds) * 1000, cuts[18] * 1000, statistics.median(cpu) * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    print(f"{'configuration':<32} {'segments':>8} {'p50 ms':>8} {'p95 ms':>8} {'cpu p50':>8} {'ms/1k chars':>11}")
    for name, config in (("default (implicit: true)", ToxicityConfig()),
                         ("profanity only (implicit: false)", ToxicityConfig(implicit=False)),
                         ("detector: encoder", ToxicityConfig(detector="encoder"))):
        guard = ToxicityGuard(config)
        guard.warm()
        for segments in (1, 20):
            p50, p95, cpu = measure(guard, segments, args.requests)
            chars = sum(len(message(0, s)) for s in range(segments))
            print(f"{name:<32} {segments:>8} {p50:>8.2f} {p95:>8.2f} {cpu:>8.2f} {p50 * 1000 / chars:>11.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
