"""The streamed output stage: hold-back, redaction across chunks, blocks, tool calls, how often guards run."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any, ClassVar

import pytest

from guardproxy.engine import Engine
from guardproxy.guards import REGISTRY, Finding, GuardConfig, GuardContext, Segment
from guardproxy.policy.loader import parse_policy
from guardproxy.policy.schema import Policy
from guardproxy.proxy.dialects import DIALECTS
from guardproxy.proxy.sse import DONE, SSEDecoder, encode_data, parse_event
from guardproxy.proxy.stream_guard import HoldBackBuffer, StreamGuard

CHAT = DIALECTS["/v1/chat/completions"]
PATHS = {"chat": "/v1/chat/completions", "completions": "/v1/completions"}

POLICY = parse_policy("""
version: 1
name: s
stream: {hold_back_chars: 16}
chains:
  default:
    output:
      - {guard: keywords, action: block, terms: [stop here], label: stop}
      - {guard: keywords, action: redact, patterns: ['\\d{3}-\\d{4}'], label: PHONE}
      - {guard: keywords, action: flag, terms: [maybe], label: maybe}
""", "s")


def chat_chunk(index: int = 0, content: str | None = None, finish: str | None = None, **delta: Any) -> bytes:
    if content is not None:
        delta["content"] = content
    return encode_data({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
                        "choices": [{"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}]})


def pieces(text: str, size: int = 3) -> list[str]:
    return [text[i:i + size] for i in range(0, len(text), size)]


async def run(events: list[bytes], endpoint: str = "chat") -> tuple[bytes, StreamGuard]:
    engine = Engine(1)
    guard = StreamGuard(engine, POLICY, POLICY.chains["default"].output, GuardContext("output"),
                        DIALECTS[PATHS[endpoint]])
    out = b""
    for raw in events:
        out += await guard.process(parse_event(raw))
        if guard.ended:
            break
    else:
        out += await guard.finish()
    engine.close()
    return out, guard


def chat_text(out: bytes) -> tuple[str, list[str | None]]:
    text, finishes = "", []
    for event in SSEDecoder().feed(out):
        data = event.json()
        if isinstance(data, dict):
            for choice in data["choices"]:
                text += choice["delta"].get("content") or ""
                finishes.append(choice["finish_reason"])
    return text, [f for f in finishes if f]


async def test_clean_stream_arrives_whole_and_in_order() -> None:
    reply = "A perfectly ordinary answer, streamed in many small pieces to the client."
    events = [chat_chunk(role="assistant", content=""), *(chat_chunk(content=p) for p in pieces(reply)),
              chat_chunk(finish="stop"), DONE]
    out, guard = await run(events)
    assert chat_text(out) == (reply, ["stop"])
    assert out.startswith(chat_chunk(role="assistant", content=""))  # unchanged events leave byte for byte
    assert out.endswith(b": guardproxy verdict=pass\n\n" + DONE)
    assert guard.verdict == "pass"


async def test_redaction_of_a_match_split_over_chunks() -> None:
    reply = "Call me on 555-1234 tomorrow, or maybe later in the week when I am back."
    out, guard = await run([*(chat_chunk(content=p) for p in pieces(reply, 2)), chat_chunk(finish="stop"), DONE])
    assert chat_text(out)[0] == reply.replace("555-1234", "[PHONE]")
    assert guard.verdict == "redacted"
    assert {d.label for d in guard.decisions} == {"PHONE", "maybe"}


async def test_block_mid_stream_sends_nothing_after_and_ends_with_content_filter() -> None:
    reply = "Some fine text that is long enough to be released early. Then stop here and the rest is secret."
    out, _guard = await run([*(chat_chunk(content=p) for p in pieces(reply)), chat_chunk(finish="stop"), DONE])
    text, finishes = chat_text(out)
    assert finishes == ["content_filter"]
    assert "stop" not in text and "secret" not in text
    assert reply.startswith(text) and len(text) > 20
    assert out.endswith(b": guardproxy verdict=blocked\n\n" + DONE)


async def test_nothing_is_released_within_the_hold_back_window() -> None:
    buffer = HoldBackBuffer(hold_back=10)
    buffer.feed("short")
    assert buffer.cut(final=False) is None
    buffer.feed(" words then more words")
    cut = buffer.cut(final=False)
    assert cut is not None and len(buffer.text) - cut >= 10 and buffer.text[cut - 1] == " "
    assert buffer.cut(final=True) == len(buffer.text)


async def test_long_token_without_whitespace_is_still_released() -> None:
    buffer = HoldBackBuffer(hold_back=4)
    buffer.feed("x" * 40)
    assert buffer.cut(final=False) == 36


def tool_delta(**fields: Any) -> bytes:
    return chat_chunk(tool_calls=[{"index": 0, **fields}])


def streamed_calls(out: bytes) -> list[dict[str, Any]]:
    """Every tool call delta the stream sent, in order."""
    return [c for e in SSEDecoder().feed(out) if isinstance(e.json(), dict)
            for ch in e.json()["choices"] for c in ch["delta"].get("tool_calls", [])]


async def test_tool_call_arguments_are_held_then_checked_whole() -> None:
    args = json.dumps({"number": "555-1234", "note": "fine"})
    events = [chat_chunk(role="assistant", content=None),
              tool_delta(id="call_1", type="function", function={"name": "dial", "arguments": ""}),
              *(tool_delta(function={"arguments": p}) for p in pieces(args, 4)),
              chat_chunk(finish="tool_calls"), DONE]
    out, guard = await run(events)
    assert guard.verdict == "redacted"
    calls = streamed_calls(out)
    assert len(calls) == 1  # held, then sent whole
    assert calls[0]["id"] == "call_1" and calls[0]["function"]["name"] == "dial"
    assert json.loads(calls[0]["function"]["arguments"]) == {"number": "[PHONE]", "note": "fine"}

    blocked = json.dumps({"q": "stop here"})
    events[2:-2] = [tool_delta(function={"arguments": p}) for p in pieces(blocked, 4)]
    out, _guard = await run(events)
    assert chat_text(out)[1] == ["content_filter"] and b"stop here" not in out


async def test_custom_tool_call_input_is_held_then_checked_whole_and_stays_custom() -> None:
    text = "dial 555-1234 and say fine"
    events = [chat_chunk(role="assistant", content=None),
              tool_delta(id="call_1", type="custom", custom={"name": "shell", "input": ""}),
              *(tool_delta(custom={"input": p}) for p in pieces(text, 4)),
              chat_chunk(finish="tool_calls"), DONE]
    out, guard = await run(events)
    assert guard.verdict == "redacted"
    calls = streamed_calls(out)
    assert calls == [{"index": 0, "id": "call_1", "type": "custom",
                      "custom": {"name": "shell", "input": "dial [PHONE] and say fine"}}]  # held, sent whole

    events[2:-2] = [tool_delta(custom={"input": p}) for p in pieces("then stop here now", 4)]
    out, guard = await run(events)
    assert guard.verdict == "blocked"
    assert chat_text(out)[1] == ["content_filter"] and b"stop" not in out and b"custom" not in out


async def test_two_choices_are_guarded_separately() -> None:
    events = [chat_chunk(0, "first choice is fine and long enough to release "),
              chat_chunk(1, "second has 555-1234 inside it "),
              chat_chunk(0, finish="stop"), chat_chunk(1, finish="stop"), DONE]
    out, _ = await run(events)
    per_choice: dict[int, str] = {0: "", 1: ""}
    for event in SSEDecoder().feed(out):
        data = event.json()
        if isinstance(data, dict):
            for choice in data["choices"]:
                per_choice[choice["index"]] += choice["delta"].get("content") or ""
    assert per_choice == {0: "first choice is fine and long enough to release ",
                          1: "second has [PHONE] inside it "}


async def test_usage_chunk_and_stream_without_done() -> None:
    usage = encode_data({"id": "c", "object": "chat.completion.chunk", "choices": [], "usage": {"total_tokens": 3}})
    out, _ = await run([chat_chunk(content="held text"), usage])
    assert usage in out
    assert chat_text(out)[0] == "held text"  # flushed at the end although no [DONE] came


async def test_completions_stream() -> None:
    def chunk(text: str, finish: str | None = None) -> bytes:
        return encode_data({"id": "c", "object": "text_completion", "choices": [
            {"index": 0, "text": text, "logprobs": None, "finish_reason": finish}]})

    out, _guard = await run([chunk("dial 555-"), chunk("1234 now please"), chunk("", "stop"), DONE],
                           endpoint="completions")
    text = "".join(c["text"] for e in SSEDecoder().feed(out) if isinstance(e.json(), dict)
                   for c in e.json()["choices"])
    assert text == "dial [PHONE] now please"


class SentenceConfig(GuardConfig):
    seconds: float = 0.0
    fail: bool = False


class SentenceGuard:
    """Flags every text it sees, after ``seconds``; notes the texts; raises if ``fail``."""

    Config: ClassVar[type[GuardConfig]] = SentenceConfig
    kind: ClassVar[str] = "cpu"
    seen: ClassVar[list[str]] = []

    def __init__(self, config: SentenceConfig) -> None:
        self.config = config

    def warm(self) -> None:
        return None

    def scan(self, segments: Sequence[Segment], context: GuardContext) -> list[Finding]:
        time.sleep(self.config.seconds)
        if self.config.fail:
            raise RuntimeError("the checker is down")
        self.seen.extend(s.text for s in segments)
        return [Finding("seen", 0.9, i) for i in range(len(segments))]


@pytest.fixture(autouse=True)
def sentence_guard(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(REGISTRY, "sentences", SentenceGuard)  # type: ignore[arg-type]
    SentenceGuard.seen.clear()
    SEEN_AT_RELEASE.clear()


def output_policy(hold_back: int, *entries: str) -> Policy:
    chain = "".join(f"      - {entry}\n" for entry in entries)
    return parse_policy(f"version: 1\nname: p\nstream: {{hold_back_chars: {hold_back}}}\n"
                        f"chains:\n  default:\n    output:\n{chain}", "p")


SEEN_AT_RELEASE: list[int] = []


async def released_per_chunk(policy: Policy, events: list[bytes],
                             seen_at_release: bool = False) -> tuple[list[str], StreamGuard, list[float]]:
    """The text each event released, and when (seconds since the start)."""
    engine = Engine(2)
    guard = StreamGuard(engine, policy, policy.chains["default"].output, GuardContext("output"), CHAT)
    released, times, started = [], [], time.perf_counter()
    for raw in events:
        out = await guard.process(parse_event(raw))
        released.append(chat_text(out)[0])
        times.append(time.perf_counter() - started)
        if seen_at_release:
            SEEN_AT_RELEASE.append(len(SentenceGuard.seen))
        if guard.ended:
            break
    engine.close()
    return released, guard, times


LONG_REPLY = ("The first part of the answer is plain. Call 555-1234 if you need us, and maybe write. "
              "The rest goes on for a while, one small piece at a time, until the answer is complete.")


async def test_text_arriving_between_checks_waits_and_is_checked_together() -> None:
    events = [*(chat_chunk(content=p) for p in pieces(LONG_REPLY, 2)), chat_chunk(finish="stop"), DONE]
    released, guard, _ = await released_per_chunk(POLICY, events)
    assert "".join(released) == LONG_REPLY.replace("555-1234", "[PHONE]")
    assert guard.rounds <= len(LONG_REPLY) // 16 + 2 < len(events) // 3  # not one chain run per chunk
    assert {d.label for d in guard.decisions} == {"PHONE", "maybe"}
    assert {d.name for d in guard.decisions} == {"keywords#2", "keywords#3"}  # named as in the whole chain


async def test_the_first_release_comes_as_soon_as_the_hold_back_allows() -> None:
    chunks = pieces(LONG_REPLY, 2)
    buffer = HoldBackBuffer(hold_back=16)
    first_possible = next(i for i, p in enumerate(chunks) if buffer.feed(p) or buffer.cut(final=False))
    released, _, _ = await released_per_chunk(POLICY, [chat_chunk(content=p) for p in chunks])
    assert next(i for i, text in enumerate(released) if text) == first_possible


async def test_guards_that_cannot_change_the_text_check_sentences_without_delaying_it() -> None:
    policy = output_policy(16, "{guard: keywords, action: redact, patterns: ['\\d{3}-\\d{4}'], label: PHONE}",
                           "{guard: sentences, action: flag, seconds: 0.5}")
    events = [*(chat_chunk(content=p) for p in pieces(LONG_REPLY, 8)), chat_chunk(finish="stop"), DONE]
    released, guard, _ = await released_per_chunk(policy, events, seen_at_release=True)
    first = next(i for i, text in enumerate(released) if text)
    assert SEEN_AT_RELEASE[first] == 0  # released before the slow flag guard had seen any sentence
    assert "".join(released) == LONG_REPLY.replace("555-1234", "[PHONE]")
    assert sorted(SentenceGuard.seen) == sorted([  # each sentence once, whole; checks run in parallel
        "The first part of the answer is plain. ", "Call 555-1234 if you need us, and maybe write. ",
        LONG_REPLY[LONG_REPLY.index("The rest"):]])
    assert guard.verdict == "redacted" and [d.label for d in guard.decisions].count("seen") == 3


async def test_a_failing_background_guard_fails_closed_only_where_the_chain_gates() -> None:
    failing = "{guard: sentences, action: flag, fail: true}"
    events = [*(chat_chunk(content=p) for p in pieces(LONG_REPLY, 8)), chat_chunk(finish="stop"), DONE]
    gating = output_policy(16, "{guard: keywords, action: redact, terms: [nothing], label: X}", failing)
    released, guard, _ = await released_per_chunk(gating, events)
    assert guard.blocked and guard.verdict == "blocked"
    assert LONG_REPLY.startswith("".join(released)) and len("".join(released)) < len(LONG_REPLY)

    observing = output_policy(16, failing)  # a chain that cannot change the text never changes the stream
    released, guard, _ = await released_per_chunk(observing, events)
    assert "".join(released) == LONG_REPLY and not guard.blocked and guard.verdict == "flagged"


async def test_a_long_hold_back_does_not_make_releases_wait_for_as_long_again() -> None:
    policy = output_policy(200, "{guard: keywords, action: redact, patterns: ['\\d{3}-\\d{4}'], label: PHONE}")
    reply = " ".join(f"word{i}" for i in range(150))
    released, _, _ = await released_per_chunk(policy, [chat_chunk(content=p) for p in pieces(reply, 4)])
    assert reply.startswith("".join(released))
    mid_stream = [text for text in released if text]
    assert len(mid_stream) > 3 and max(len(text) for text in mid_stream) < 100  # about 64 at a time, not 200


async def test_a_window_never_starts_inside_a_value_already_redacted() -> None:
    """Found by the property test at hold-back 32: a check that began inside the second card saw
    its tail and the third card's head as one (invalid) card number and missed the third card."""
    policy = output_policy(32, "{guard: pii, action: redact, nlp: pattern, style: type, entities: [CREDIT_CARD]}")
    cards = " ".join(["4111 1111 1111 1111"] * 3)
    released, _, _ = await released_per_chunk(policy, [chat_chunk(content=cards), chat_chunk(finish="stop"), DONE])
    assert "".join(released) == "<CREDIT_CARD> <CREDIT_CARD> <CREDIT_CARD>"
