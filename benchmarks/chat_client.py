"""The Python load client: one keep-alive connection per target, one request at a time.

Used where wrk cannot: a different prompt on every request (guards cache by
text), and streams timed event by event. Bodies are serialised before the clock
starts; a latency is the time to the last byte. Runs on uvloop. Its own cost is
shown by the "direct" rows, which go to the upstream with no proxy between.
"""

from __future__ import annotations

import json
import statistics
import time
import urllib.request
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import uvloop

MODEL = "gpt-4o-mini"
HEADERS = {"content-type": "application/json", "authorization": "Bearer sk-bench"}
GIVE_UP = 3


def preflight(url: str, headers: dict[str, str]) -> None:
    """Raise unless ``url`` answers the benchmark's chat completion, plain and streamed, with 200
    and the upstream's reply: a target that answers errors quickly must not pass for a fast one."""
    for stream, expected in ((False, b"Paris"), (True, b"[DONE]")):
        body = user_body("What is the capital of France?", stream)
        request = urllib.request.Request(url, data=body, method="POST",
                                         headers={**headers, "content-type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            answer = response.read()
            if response.status != 200 or expected not in answer:
                raise RuntimeError(f"{url} answered {response.status}: {answer[:200]!r}")


def chat_body(messages: list[dict[str, str]], stream: bool = False) -> bytes:
    body: dict[str, Any] = {"model": MODEL, "messages": messages}
    if stream:
        body["stream"] = True
    return json.dumps(body).encode()


def user_body(prompt: str, stream: bool = False) -> bytes:
    return chat_body([{"role": "user", "content": prompt}], stream)


@dataclass
class Timings:
    """Latencies in ms of every request, and how many answered something other than 200. A guard
    that times out blocks the request (``on_error: block``): such a request still took its time,
    so it counts in the percentiles, and the failures are reported beside them."""

    ms: list[float] = field(default_factory=list)
    failures: dict[int, int] = field(default_factory=dict)
    gave_up: bool = False  # stopped before its last request (see guard_cost.paired)

    def add(self, ms: float, status: int) -> None:
        self.ms.append(ms)
        if status != 200:
            self.failures[status] = self.failures.get(status, 0) + 1

    def failed(self) -> int:
        return sum(self.failures.values())

    def hopeless(self) -> bool:
        """Its first ``GIVE_UP`` requests all failed: with guards, each was a guard's time-out (so the
        figure is the policy's ``timeout_ms``), and each left work behind in the proxy's threads."""
        return len(self.ms) >= GIVE_UP and self.failed() == len(self.ms)

    def p50(self) -> float:
        return statistics.median(self.ms) if self.ms else float("nan")

    def p95(self) -> float:
        return percentile(self.ms, 0.95)


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered) + 0.5) - 1))]


class Client:
    """A session per target URL, so each keeps its own warm connection."""

    def __init__(self) -> None:
        self._sessions: dict[str, aiohttp.ClientSession] = {}

    def _session(self, url: str) -> aiohttp.ClientSession:
        origin = url.split("/v1/", 1)[0]
        if origin not in self._sessions:
            connector = aiohttp.TCPConnector(limit=1, force_close=False)
            self._sessions[origin] = aiohttp.ClientSession(connector=connector, auto_decompress=False)
        return self._sessions[origin]

    async def post(self, url: str, body: bytes, headers: dict[str, str] | None = None) -> tuple[float, int]:
        """One request to the last byte: (ms, status)."""
        session = self._session(url)
        started = time.perf_counter()
        async with session.post(url, data=body, headers=headers or HEADERS) as response:
            await response.read()
            status = response.status
        return (time.perf_counter() - started) * 1000, status

    async def stream(self, url: str, body: bytes) -> tuple[int, list[tuple[float, str]]]:
        """One streamed request: the status, and for each SSE event that carries content,
        its arrival in ms after the request was sent and its text."""
        session = self._session(url)
        events: list[tuple[float, str]] = []
        started = time.perf_counter()
        async with session.post(url, data=body, headers=HEADERS) as response:
            async for line in response.content:
                if not line.startswith(b"data: ") or line.startswith(b"data: [DONE]"):
                    continue
                arrived = (time.perf_counter() - started) * 1000
                chunk = json.loads(line[6:])
                text = "".join((choice.get("delta") or {}).get("content") or "" for choice in chunk.get("choices", []))
                if text:
                    events.append((arrived, text))
            return response.status, events

    async def close(self) -> None:
        for session in self._sessions.values():
            await session.close()


def run(work: Callable[[Client], Awaitable[Any]]) -> Any:
    """Run ``work(client)`` on a fresh uvloop event loop and close the client's sessions."""
    async def main() -> Any:
        client = Client()
        try:
            return await work(client)
        finally:
            await client.close()

    return uvloop.run(main())
