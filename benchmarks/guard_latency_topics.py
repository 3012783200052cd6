"""What ``guard: topics`` costs per request: ``scan`` over 1 and 20 segments, for each method.

Topics are those of ``policies/examples/topics.yaml``. The embedding cache is off (``cache_size: 0``),
so every run embeds its text afresh: the figures are the uncached cost (a chat history resent every
turn mostly hits the cache). ``llm`` calls the demo upstream, started as its own process, through the
same ``GuardUpstreamClient`` the proxy gives guards, awaited on an event loop thread as the proxy awaits
it: it measures the guard's overhead and one local HTTP round trip, not a real model's latency (one
judge call per request, all segments in it).

    .venv/bin/python benchmarks/guard_latency_topics.py [--runs 200] [--no-llm]
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import threading
import time
from typing import Any

import httpx
import yaml
from processes import free_port, start, stop_all
from topics_quality import POLICY

from guardproxy.guards.base import GuardContext, Segment
from guardproxy.guards.topics.config import TopicsConfig
from guardproxy.guards.topics.guard import TopicsGuard
from guardproxy.proxy.upstream import GuardUpstreamClient

SENTENCES = [
    "Could you help me draft a short note to the team about Friday's offsite?",
    "I keep getting a timeout when the script uploads files larger than a gigabyte.",
    "What is a good way to explain recursion to a twelve-year-old?",
    "We are comparing two database designs for the order history table.",
]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def measure(guard: TopicsGuard, context: GuardContext, loop: asyncio.AbstractEventLoop, segments: int,
            runs: int) -> tuple[float, float, float]:
    """Wall-clock p50 and p95 and CPU p50 (this thread; onnxruntime runs in it) in ms."""
    timings, cpu = [], []
    for run in range(runs):
        texts = [f"{SENTENCES[(run + i) % len(SENTENCES)]} (note {run}-{i})" for i in range(segments)]
        started, cpu_started = time.perf_counter(), time.thread_time()
        found = guard.scan([Segment(text, ("messages", i, "content"), "user") for i, text in enumerate(texts)],
                           context)
        if not isinstance(found, list):  # method: llm, an io guard: its judge call is awaited on the loop
            asyncio.run_coroutine_threadsafe(found, loop).result()  # type: ignore[arg-type]
        timings.append((time.perf_counter() - started) * 1000)
        cpu.append((time.thread_time() - cpu_started) * 1000)
    return percentile(timings, 0.5), percentile(timings, 0.95), percentile(cpu, 0.5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--no-llm", action="store_true")
    args = parser.parse_args()
    topics: list[dict[str, Any]] = yaml.safe_load(POLICY.read_text())["chains"]["default"]["input"][0]["topics"]
    settings: dict[str, dict[str, Any]] = {"keywords": {}, "semantic": {}, "semantic, no keyword boost":
                                           {"keyword_boost": 0}}
    if not args.no_llm:
        settings["llm (demo upstream)"] = {"judge_model": "demo-judge"}
    processes: list[subprocess.Popen[bytes]] = []
    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, daemon=True).start()
    context = GuardContext("input")
    try:
        if not args.no_llm:
            port = free_port()
            upstream = f"http://127.0.0.1:{port}/v1"
            processes.append(start(["-m", "guardproxy.demo", "--port", str(port)], upstream + "/models"))
            context = GuardContext("input", upstream=GuardUpstreamClient(httpx.AsyncClient(), upstream, None))
        print(f"{'method':<28} {'1 seg p50':>10} {'p95':>8} {'cpu p50':>8} {'20 seg p50':>11} {'p95':>8} {'cpu p50':>8}"
              f"   (ms, {args.runs} runs)")
        for label, extra in settings.items():
            method = label.split(" ")[0].rstrip(",")
            guard = TopicsGuard(TopicsConfig(topics=topics, method=method, cache_size=0, **extra))  # type: ignore[arg-type]
            guard.warm()
            measure(guard, context, loop, 1, 10)
            one = measure(guard, context, loop, 1, args.runs)
            twenty = measure(guard, context, loop, 20, max(20, args.runs // 4))
            print(f"{label:<28} {one[0]:>10.2f} {one[1]:>8.2f} {one[2]:>8.2f} {twenty[0]:>11.2f} {twenty[1]:>8.2f} "
                  f"{twenty[2]:>8.2f}")
    finally:
        stop_all(processes)
        loop.call_soon_threadsafe(loop.stop)


if __name__ == "__main__":
    main()
