"""The streamed output stage: hold-back, redaction across chunks, blocks, tool calls."""

from __future__ import annotations

import json
from typing import Any

from guardproxy.engine import Engine
from guardproxy.guards import GuardContext
from guardproxy.policy.loader import parse_policy
from guardproxy.stream_guard import HoldBackBuffer, StreamGuard
from guardproxy.streaming import DONE, SSEDecoder, encode_data, parse_event

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
    guard = StreamGuard(engine, POLICY, POLICY.chains["default"].output, GuardContext("output"), endpoint)
    out = b""
    for raw in events:
        out += await guard.process(parse_event(raw))
        if guard.blocked:
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


async def test_tool_call_arguments_are_held_then_checked_whole() -> None:
    def tool_delta(**fields: Any) -> bytes:
        return chat_chunk(tool_calls=[{"index": 0, **fields}])

    args = json.dumps({"number": "555-1234", "note": "fine"})
    events = [chat_chunk(role="assistant", content=None),
              tool_delta(id="call_1", type="function", function={"name": "dial", "arguments": ""}),
              *(tool_delta(function={"arguments": p}) for p in pieces(args, 4)),
              chat_chunk(finish="tool_calls"), DONE]
    out, guard = await run(events)
    assert guard.verdict == "redacted"
    calls = [c for e in SSEDecoder().feed(out) if isinstance(e.json(), dict)
             for ch in e.json()["choices"] for c in ch["delta"].get("tool_calls", [])]
    assert len(calls) == 1  # held, then sent whole
    assert calls[0]["id"] == "call_1" and calls[0]["function"]["name"] == "dial"
    assert json.loads(calls[0]["function"]["arguments"]) == {"number": "[PHONE]", "note": "fine"}

    blocked = json.dumps({"q": "stop here"})
    events[2:-2] = [tool_delta(function={"arguments": p}) for p in pieces(blocked, 4)]
    out, _guard = await run(events)
    assert chat_text(out)[1] == ["content_filter"] and b"stop here" not in out


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
