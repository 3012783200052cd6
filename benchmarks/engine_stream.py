"""The streamed output stage alone: ``StreamGuard`` over a 20-chunk answer with the default output chain.

The answer (~420 characters, an email address and a phone number among them,
which the chain's PII guard redacts) arrives in 20 chunks. Every stream's
answer carries its own number in every sentence, so no cache answers for an
earlier stream. Reported per stream:

- chain runs: ``Engine.run`` calls, and how many of them gated a release (the
  rest are background checks of whole sentences);
- CPU: process CPU time per stream with chunks fed back to back (all threads);
- TTFT: with a chunk every ``--interval-ms``, the time from the first chunk to
  the first released text, and how much of it the hold-back alone needs (the
  arrival of the chunk that makes the first release possible);
- streams/s with 16 streams fed back to back on one event loop.

    .venv/bin/python benchmarks/engine_stream.py [--streams 100] [--interval-ms 20]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import statistics
import time
from collections.abc import Sequence
from pathlib import Path

from guardproxy.engine import ChainResult, Engine
from guardproxy.guards import GuardContext, Segment
from guardproxy.policy.loader import load_policy_set
from guardproxy.policy.schema import GuardEntry, Policy
from guardproxy.proxy.dialects import DIALECTS
from guardproxy.proxy.sse import DONE, SSEDecoder, encode_data, parse_event
from guardproxy.proxy.stream_guard import HoldBackBuffer, StreamGuard

CHAT = DIALECTS["/v1/chat/completions"]

POLICY = Path(__file__).resolve().parent.parent / "policies" / "default.yaml"
SENTENCES = (
    "Thanks for waiting, order {n} is confirmed.",
    "I checked the booking {n} and everything is in order: two nights at the harbour hotel.",
    "If anything changes for booking {n}, write to reservations@harbourhotel.example.com or call (206) 555-0173.",
    "They will hold room {n} until midnight, and parking is free for guests.",
    "The tram stop is a short walk away from entrance {n}.",
)
CHUNKS = 20
STREAM_NUMBERS = itertools.count()


def answer() -> str:
    number = next(STREAM_NUMBERS)
    return " ".join(s.format(n=number) for s in SENTENCES)


def chunks(text: str) -> list[bytes]:
    size = -(-len(text) // CHUNKS)
    events = [encode_data({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m", "choices": [
        {"index": 0, "delta": {"content": text[i:i + size]}, "logprobs": None, "finish_reason": None}]})
        for i in range(0, len(text), size)]
    final = {"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}
    return [*events, encode_data({"id": "c", "object": "chat.completion.chunk", "choices": [final]}), DONE]


def content_of(out: bytes) -> str:
    return "".join(c["delta"].get("content") or "" for e in SSEDecoder().feed(out)
                   if isinstance(e.json(), dict) for c in e.json()["choices"])


class CountingEngine(Engine):
    runs = 0

    async def run(self, policy: Policy, entries: Sequence[GuardEntry], segments: Sequence[Segment],
                  context: GuardContext, **options: bool) -> ChainResult:
        CountingEngine.runs += 1
        return await super().run(policy, entries, segments, context, **options)


async def stream(engine: Engine, policy: Policy, interval: float = 0.0) -> tuple[str, float | None, int]:
    """The released text, the seconds from the first chunk to the first released text, and
    how many chain runs gated a release."""
    guard = StreamGuard(engine, policy, policy.chains["default"].output, GuardContext("output"), CHAT)
    released, first_at, started = "", None, time.perf_counter()
    for position, raw in enumerate(chunks(answer())):
        if interval:
            await asyncio.sleep(max(0.0, started + position * interval - time.perf_counter()))
        piece = content_of(await guard.process(parse_event(raw)))
        if piece and first_at is None:
            first_at = time.perf_counter() - started
        released += piece
    return released, first_at, guard.rounds


def hold_back_floor(policy: Policy, interval: float) -> float:
    """When the first release becomes possible: the hold-back's own share of TTFT."""
    text = answer()
    size = -(-len(text) // CHUNKS)
    buffer = HoldBackBuffer(policy.stream.hold_back_chars)
    for position, start in enumerate(range(0, len(text), size)):
        buffer.feed(text[start:start + size])
        if buffer.cut(final=False) is not None:
            return position * interval
    return CHUNKS * interval


async def main_async(args: argparse.Namespace) -> None:
    policy = load_policy_set(POLICY).policies[0].policy
    engine = CountingEngine()
    engine.prepare([policy])
    released, _, _ = await stream(engine, policy)
    assert "555-0173" not in released and "reservations@" not in released, "the PII guard did not redact"
    CountingEngine.runs = 0
    cpu = time.process_time()
    gating = sum([(await stream(engine, policy))[2] for _ in range(args.streams)]) / args.streams
    cpu = (time.process_time() - cpu) / args.streams
    runs = CountingEngine.runs / args.streams
    interval = args.interval_ms / 1000
    ttfts = [(await stream(engine, policy, interval))[1] or 0.0 for _ in range(args.ttft_streams)]
    floor = hold_back_floor(policy, interval)
    numbers = itertools.islice(itertools.count(), args.streams)

    async def worker() -> None:
        while next(numbers, None) is not None:
            await stream(engine, policy)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(16)))
    rate = args.streams / (time.perf_counter() - started)
    print(f"hold_back_chars {policy.stream.hold_back_chars}, {CHUNKS} chunks of ~{len(answer()) // CHUNKS} chars")
    print(f"chain runs per stream   {runs:.1f} ({gating:.1f} gating a release)")
    print(f"CPU per stream          {cpu * 1000:.1f} ms")
    print(f"TTFT p50                {statistics.median(ttfts) * 1000:.1f} ms "
          f"(hold-back alone: {floor * 1000:.0f} ms, chunk every {args.interval_ms:g} ms)")
    print(f"streams/s at 16         {rate:.0f}")
    engine.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--streams", type=int, default=100)
    parser.add_argument("--ttft-streams", type=int, default=15)
    parser.add_argument("--interval-ms", type=float, default=20.0)
    asyncio.run(main_async(parser.parse_args()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
