"""Added latency of the proxy: the demo upstream called directly, side by side
with the same calls through guardproxy (no guards, and the default policy).

Each server runs in its own process (uvloop + httptools), and the load comes
from this process with aiohttp. Prints p50/p99 per target and the difference.

    .venv/bin/python benchmarks/passthrough_latency.py [--requests 2000] [--concurrency 1 16]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import aiohttp
from processes import free_port, start, stop_all

REPO = Path(__file__).resolve().parent.parent
BODY = {"model": "demo", "messages": [{"role": "user", "content": "Summarise the quarterly report in two lines."}]}
NO_GUARDS = "version: 1\nname: passthrough\nchains: {default: {}}\n"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def measure(url: str, requests: int, concurrency: int, stream: bool) -> tuple[list[float], float]:
    """Latency of each request (to the last byte) in ms, and requests per second."""
    latencies: list[float] = []
    body = {**BODY, "stream": stream}
    queue = iter(range(requests))
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        async def worker() -> None:
            for _ in queue:
                started = time.perf_counter()
                async with session.post(url, json=body, headers={"authorization": "Bearer sk-bench"}) as response:
                    await response.read()
                    if response.status != 200:
                        raise RuntimeError(f"{url} answered {response.status}")
                latencies.append((time.perf_counter() - started) * 1000)

        for _ in range(50):  # warm-up: connections, caches
            async with session.post(url, json=body) as response:
                await response.read()
        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return latencies, requests / elapsed


def compare(targets: dict[str, str], requests: int, concurrencies: list[int], width: int = 26) -> None:
    """Measure each target non-streamed and streamed at each concurrency, printing p50/p99,
    req/s and what each target adds over the first one."""
    print(f"{'target':{width}} {'stream':>6} {'conc':>4} {'p50 ms':>8} {'p99 ms':>8} {'req/s':>8} "
          f"{'+p50 ms':>8} {'+p99 ms':>8}")
    for stream in (False, True):
        for concurrency in concurrencies:
            base: tuple[float, float] | None = None
            for name, url in targets.items():
                latencies, rate = asyncio.run(measure(url + "/chat/completions", requests, concurrency, stream))
                p50, p99 = statistics.median(latencies), percentile(latencies, 0.99)
                added = "" if base is None else f"{p50 - base[0]:8.3f} {p99 - base[1]:8.3f}"
                base = base or (p50, p99)
                print(f"{name:{width}} {stream!s:>6} {concurrency:>4} {p50:8.2f} {p99:8.2f} {rate:8.0f} {added}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16])
    args = parser.parse_args()

    processes: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory() as tmp:
        empty_policy = Path(tmp) / "passthrough.yaml"
        empty_policy.write_text(NO_GUARDS)
        upstream_port, bare_port, default_port = free_port(), free_port(), free_port()
        upstream = f"http://127.0.0.1:{upstream_port}/v1"
        try:
            processes.append(start(["-m", "guardproxy.demo", "--port", str(upstream_port)], upstream + "/models"))
            for port, policy in ((bare_port, empty_policy), (default_port, REPO / "policies")):
                processes.append(start(["-m", "guardproxy", "serve", "--upstream", upstream, "--policy", str(policy),
                                        "--port", str(port)], f"http://127.0.0.1:{port}/readyz"))
            targets = {
                "direct (demo upstream)": upstream,
                "proxy, no guards": f"http://127.0.0.1:{bare_port}/v1",
                "proxy, default policy": f"http://127.0.0.1:{default_port}/v1",
            }
            print(f"{args.requests} chat completions per row; latency to the last byte; "
                  f"{os.cpu_count()} CPUs shared by load, proxy and upstream")
            compare(targets, args.requests, args.concurrency)
        finally:
            stop_all(processes)


if __name__ == "__main__":
    main()
