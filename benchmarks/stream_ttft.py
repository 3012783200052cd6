"""Time to first token of a streamed chat completion, and what the output guard's hold-back adds.

The demo upstream streams a ~400-character reply in pieces of one to three
words, 20 ms apart (about 50 chunks a second, like a hosted model). Each target
gets the same sequential requests (concurrency 1) from an aiohttp client that
parses the SSE stream; TTFT is the time until the first chunk whose
``delta.content`` is not empty, total is the time until ``[DONE]``.

Why an output guard delays the first token: the stream guard releases a
choice's text only once ``stream.hold_back_chars`` more characters have
arrived after it, so that a value split across chunks (an email, a card number)
is seen whole by the guards before any part of it leaves. The release point
also snaps back to the last whitespace, so the first release waits until the
text holds a word boundary followed by at least ``hold_back_chars`` characters:
with 64 and ~12 characters per chunk, six or so chunks (~120 ms here) before
anything reaches the client, plus one guard scan. After that, text flows at the
upstream's pace, ``hold_back_chars`` behind it, and the end of the answer
releases the tail at once, so the total time barely moves (on a busy 2-core
machine the demo's own 20 ms sleeps stretch by up to ~60 ms a stream, which
swamps it; TTFT is the stable figure). The ``hold_back_chars: 0`` row
separates the two costs (its difference from the row without output guards is
the scan, the rest of a row's added TTFT is the buffer) and shows what the
buffer is for: a phone number cut between two chunks gets through. The wait
is counted in characters, so it scales with the upstream's characters per
second: the demo sends ~12 characters a chunk, a real model ~4 a token, so at
50 tokens a second the same hold-back costs about three times as long.

    .venv/bin/python benchmarks/stream_ttft.py [--requests 30] [--hold-back 64 32 16 0]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import aiohttp
from processes import free_port, start, stop_all

from guardproxy.demo.replies import split_into_pieces

REPLY = (
    "Thanks for waiting. I checked the booking and everything is in order: two nights at the harbour hotel, "
    "arriving on the fourteenth, with breakfast included and late checkout at noon. If anything changes, "
    "the front desk can be reached at reservations@harbourhotel.example.com or on (206) 555-0173, and they "
    "will hold the room until midnight. Parking is free for guests, and the tram stop is a short walk away."
)
HEADERS = {"x-demo-reply": REPLY, "x-demo-chunk-delay-ms": "20", "authorization": "Bearer sk-bench"}
BODY = {"model": "demo", "stream": True, "messages": [{"role": "user", "content": "Is my booking confirmed?"}]}
# Every request streams the same reply, so without cache_size: 0 the guard would answer each window from
# its cache after the first request; a real model's answers differ, and so would the windows.
OUTPUT_PII = "{output: [{guard: pii, action: redact, style: type, cache_size: 0}]}"
NO_OUTPUT_GUARD = "proxy, no output guard"
PERSONAL = ("reservations@harbourhotel.example.com", "(206) 555-0173")  # what the guard must keep out


def policy_text(chain: str, hold_back: int | None) -> str:
    stream = "" if hold_back is None else f"stream: {{hold_back_chars: {hold_back}}}\n"
    return f"version: 1\nname: ttft\n{stream}chains: {{default: {chain}}}\n"


async def streamed_request(session: aiohttp.ClientSession, url: str) -> tuple[float, float, int, str]:
    """TTFT and total in seconds, length of the first content piece, and the text the client received."""
    started = time.perf_counter()
    first: float | None = None
    first_length = 0
    pieces: list[str] = []
    async with session.post(url, json=BODY, headers=HEADERS) as response:
        if response.status != 200:
            raise RuntimeError(f"{url} answered {response.status}")
        async for raw in response.content:
            line = raw.decode().strip()
            if not line.startswith("data:") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[5:])
            for choice in chunk.get("choices", []):
                content = (choice.get("delta") or {}).get("content")
                if content:
                    if first is None:
                        first, first_length = time.perf_counter() - started, len(content)
                    pieces.append(content)
    if first is None:
        raise RuntimeError(f"{url} streamed no content")
    return first, time.perf_counter() - started, first_length, "".join(pieces)


async def measure(url: str, requests: int) -> tuple[list[float], list[float], list[int], str]:
    """Per request: TTFT, total and first-piece length; and the text of the last reply."""
    async with aiohttp.ClientSession() as session:
        for _ in range(3):  # warm-up: connection, guard threads
            await streamed_request(session, url)
        results = [await streamed_request(session, url) for _ in range(requests)]
    ttfts, totals, firsts, texts = zip(*results, strict=True)
    return list(ttfts), list(totals), list(firsts), texts[-1]


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20, method="inclusive")[18]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=30, help="streamed requests per target")
    parser.add_argument("--hold-back", type=int, nargs="+", default=[64, 32, 16, 0],
                        help="hold_back_chars values to run with the output PII guard")
    args = parser.parse_args()

    processes: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory() as tmp:
        upstream_port = free_port()
        upstream = f"http://127.0.0.1:{upstream_port}/v1"
        proxies = {NO_OUTPUT_GUARD: policy_text("{}", None)}
        proxies |= {f"proxy + pii, hold {n}": policy_text(OUTPUT_PII, n) for n in args.hold_back}
        try:
            processes.append(start(["-m", "guardproxy.demo", "--port", str(upstream_port)], upstream + "/models"))
            targets = {"direct (demo upstream)": upstream + "/chat/completions"}
            for index, (name, text) in enumerate(proxies.items()):
                policy, port = Path(tmp) / f"p{index}.yaml", free_port()
                policy.write_text(text)
                processes.append(start(["-m", "guardproxy", "serve", "--upstream", upstream, "--policy",
                                        str(policy), "--port", str(port)], f"http://127.0.0.1:{port}/readyz"))
                targets[name] = f"http://127.0.0.1:{port}/v1/chat/completions"

            chunks = len(split_into_pieces(REPLY))
            print(f"{args.requests} streamed chat completions per row, one at a time; {len(REPLY)}-char reply "
                  f"in {chunks} chunks of ~{len(REPLY) / chunks:.0f} chars, 20 ms apart")
            print(f"{'target':24} {'TTFT p50':>9} {'TTFT p95':>9} {'total p50':>10} {'total p95':>10} "
                  f"{'1st piece':>9} {'kept out':>8} {'+TTFT p50':>10}")
            base: float | None = None
            redacted = ""
            for name, url in targets.items():
                ttfts, totals, firsts, text = asyncio.run(measure(url, args.requests))
                ttft = statistics.median(ttfts) * 1000
                added = f"{ttft - base:10.1f}" if base is not None and "pii" in name else ""
                if name == NO_OUTPUT_GUARD:
                    base = ttft
                redacted = redacted or (text if "pii" in name else "")
                kept_out = f"{sum(value not in text for value in PERSONAL)}/{len(PERSONAL)}"
                print(f"{name:24} {ttft:9.1f} {p95(ttfts) * 1000:9.1f} {statistics.median(totals) * 1000:10.1f} "
                      f"{p95(totals) * 1000:10.1f} {statistics.median(firsts):9.0f} {kept_out:>8} {added}")
            print("times in ms; '1st piece' is the p50 length in characters of the first content the client got;")
            print(f"'kept out': how many of the reply's {len(PERSONAL)} personal values did not reach the client; "
                  "'+TTFT' is against the proxy without output guards")
            if redacted:
                print(f"\nthe reply through the first PII row, as the client saw it:\n{redacted}")
        finally:
            stop_all(processes)


if __name__ == "__main__":
    main()
