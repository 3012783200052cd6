"""Streamed output redaction cannot leak: for every way of cutting a text into
chunks, what is released is always a prefix of the redacted text, and ends equal to it."""

from __future__ import annotations

import asyncio
import functools
import itertools

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from guardproxy.engine import Engine
from guardproxy.guards import GuardContext, Segment
from guardproxy.policy.loader import parse_policy
from guardproxy.policy.schema import Policy
from guardproxy.proxy.dialects import DIALECTS
from guardproxy.proxy.restoration import Restorer
from guardproxy.proxy.sse import SSEDecoder, encode_data, parse_event
from guardproxy.proxy.stream_guard import StreamGuard

CHAT = DIALECTS["/v1/chat/completions"]

POLICY = parse_policy("""
version: 1
name: s
chains:
  default:
    output:
      - {guard: pii, action: redact, nlp: pattern, style: type,
         entities: [EMAIL_ADDRESS, CREDIT_CARD, IP_ADDRESS, US_SSN]}
""", "s")

CARDS = ["4111 1111 1111 1111", "5500-0000-0000-0004", "340000000000009", "6011000990139424"]
words = st.sampled_from(["the", "order", "was", "sent", "to", "our", "team", "today,", "and", "then", "please",
                         "note:", "thanks.", "(see", "below)", "\n"])
emails = st.builds(lambda user, domain: f"{user}@{domain}",
                   st.from_regex(r"[a-z][a-z0-9._]{0,14}[a-z0-9]", fullmatch=True),
                   st.sampled_from(["example.com", "mail.example.org", "corp.example.co.uk"]))
ips = st.ip_addresses(v=4).map(str).filter(lambda ip: not ip.startswith("0."))
pii = st.one_of(emails, st.sampled_from(CARDS), ips)
texts = st.lists(st.one_of(words, words, pii), min_size=1, max_size=40).map(" ".join)


@functools.cache
def engine() -> Engine:
    engine = Engine(1)
    engine.prepare([POLICY])
    return engine


def chunk(text: str) -> bytes:
    return encode_data({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
                        "choices": [{"index": 0, "delta": {"content": text}, "logprobs": None,
                                     "finish_reason": None}]})


async def whole_redaction(policy: Policy, text: str) -> tuple[str, list[str]]:
    result = await engine().run(policy, policy.chains["default"].output, [Segment(text)], GuardContext("output"))
    values = [text[d.start:d.end] for d in result.decisions if d.start is not None and d.end is not None]
    return result.texts[0], values


async def stream(policy: Policy, pieces: list[str], restorer: Restorer | None = None) -> list[str]:
    guard = StreamGuard(engine(), policy, policy.chains["default"].output, GuardContext("output"), CHAT, restorer)
    released: list[str] = []
    events = [chunk(p) for p in pieces] + [encode_data({"id": "c", "object": "chat.completion.chunk", "choices": [
        {"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}]}), b"data: [DONE]\n\n"]
    for raw in events:
        out = await guard.process(parse_event(raw))
        for event in SSEDecoder().feed(out):
            data = event.json()
            if isinstance(data, dict):
                released.extend(c["delta"].get("content") or "" for c in data["choices"])
    return released


def cut(text: str, points: list[int]) -> list[str]:
    bounds = sorted({0, len(text), *(p % (len(text) + 1) for p in points)})
    return [text[a:b] for a, b in itertools.pairwise(bounds)]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=texts, points=st.lists(st.integers(min_value=0, max_value=10_000), max_size=60))
def test_every_chunking_releases_only_prefixes_of_the_redacted_text(text: str, points: list[int]) -> None:
    expected, values = asyncio.run(whole_redaction(POLICY, text))
    released = asyncio.run(stream(POLICY, cut(text, points)))
    so_far = ""
    for piece in released:
        so_far += piece
        assert expected.startswith(so_far), (so_far, expected)
        for value in values:
            assert value not in so_far
    assert so_far == expected


@settings(max_examples=60, deadline=None)
@given(names=st.lists(st.sampled_from(["<PERSON_1>", "<EMAIL_ADDRESS_1>", "<PERSON_2>"]), min_size=1, max_size=5),
       points=st.lists(st.integers(min_value=0, max_value=1000), max_size=40))
def test_placeholders_split_across_chunks_are_restored(names: list[str], points: list[int]) -> None:
    mapping = {"<PERSON_1>": "Ana Silva", "<EMAIL_ADDRESS_1>": "ana@example.com"}
    text = "Dear " + ", ".join(names) + ", thanks for writing."
    released = asyncio.run(stream(POLICY, cut(text, points), Restorer(mapping)))
    expected = text
    for placeholder, value in mapping.items():
        expected = expected.replace(placeholder, value)
    assert "".join(released) == expected


def test_an_invented_value_is_still_redacted_beside_a_restored_one() -> None:
    mapping = {"<EMAIL_ADDRESS_1>": "ana@example.com"}
    text = "Write to <EMAIL_ADDRESS_1> or to bob@example.org, either works."
    released = asyncio.run(stream(POLICY, cut(text, [3, 9, 14, 30, 33]), Restorer(mapping)))
    assert "".join(released) == "Write to ana@example.com or to <EMAIL_ADDRESS>, either works."
