"""Every text-bearing field in the dialect table is guarded: a banned word there is
blocked and a secret redacted, in requests, JSON answers and streams, and neither
ever reaches the client or the upstream. The answers come from a scripted upstream
whose every answer is validated against the OpenAI SDK's types; the client is the
real SDK (or plain HTTP, to read the exact bytes)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import openai
import pytest
from openai.types import Completion
from openai.types.chat import ChatCompletion

from tests.conftest import RunningProxy
from tests.scripted_upstream import Answer, ScriptedUpstream, chat_answer, chat_chunk, split

BANNED = "project zanzibar"
SECRET = "sk-" + "Q7x" * 10  # 33 characters: longer than the hold-back
POLICY = """
version: 1
name: conformance
stream: {hold_back_chars: 24}
chains:
  default:
    input: &checks
      - {name: banned, guard: keywords, action: block, terms: [zanzibar], label: banned}
      - {name: secret, guard: keywords, action: redact, patterns: ['sk-[A-Za-z0-9]{20,}'], label: SECRET,
         case_sensitive: true}
    output: *checks
"""


@pytest.fixture
def proxy(start_scripted_proxy: Callable[[str], tuple[RunningProxy, ScriptedUpstream]]
          ) -> tuple[RunningProxy, ScriptedUpstream]:
    return start_scripted_proxy(POLICY)


# --- requests -------------------------------------------------------------------------------------------

def _arguments(text: str) -> str:
    return json.dumps({"query": text, "limit": 3})


REQUEST_FIELDS: dict[str, Callable[[str], list[dict[str, Any]]]] = {
    "user content": lambda t: [{"role": "user", "content": t}],
    "system content": lambda t: [{"role": "system", "content": t}, {"role": "user", "content": "hi"}],
    "content part": lambda t: [{"role": "user", "content": [{"type": "text", "text": t}]}],
    "assistant reasoning_content": lambda t: [{"role": "user", "content": "hi"},
                                             {"role": "assistant", "content": "ok", "reasoning_content": t},
                                             {"role": "user", "content": "go on"}],
    "assistant refusal": lambda t: [{"role": "user", "content": "hi"},
                                   {"role": "assistant", "content": None, "refusal": t},
                                   {"role": "user", "content": "go on"}],
    "assistant refusal part": lambda t: [{"role": "user", "content": "hi"},
                                        {"role": "assistant", "content": [{"type": "refusal", "refusal": t}]},
                                        {"role": "user", "content": "go on"}],
    "tool call arguments": lambda t: [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "search", "arguments": _arguments(t)}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "nothing found"}],
    "function_call arguments": lambda t: [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": None, "function_call": {"name": "search", "arguments": _arguments(t)}},
        {"role": "function", "name": "search", "content": "nothing found"}],
    "tool result": lambda t: [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "search", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": t}],
}


@pytest.mark.parametrize("field", REQUEST_FIELDS)
def test_chat_request_field_is_blocked_and_redacted(field: str, proxy: tuple[RunningProxy, ScriptedUpstream]) -> None:
    running, upstream = proxy
    client = running.client()
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="m", messages=REQUEST_FIELDS[field](f"Tell me about {BANNED}."))
    assert caught.value.body["code"] == "policy_violation"  # type: ignore[index]
    assert upstream.received == []
    upstream.script(Answer(json=chat_answer({"content": "fine"})))
    client.chat.completions.create(model="m", messages=REQUEST_FIELDS[field](f"My key is {SECRET} ok"))
    sent = upstream.bodies().decode()
    assert SECRET not in sent and "[SECRET]" in sent
    json.loads(upstream.received[0].body)  # still valid JSON (arguments re-serialised, not broken)


@pytest.mark.parametrize(("path", "payload"), [
    ("/v1/completions", {"model": "m", "prompt": f"About {BANNED}"}),
    ("/v1/completions", {"model": "m", "prompt": ["fine", f"About {BANNED}"]}),
    ("/v1/embeddings", {"model": "m", "input": f"About {BANNED}"}),
    ("/v1/embeddings", {"model": "m", "input": ["fine", f"About {BANNED}"]}),
])
def test_other_request_fields_are_blocked(path: str, payload: dict[str, Any],
                                          proxy: tuple[RunningProxy, ScriptedUpstream]) -> None:
    running, upstream = proxy
    answer = httpx.post(running.url + path, json=payload)
    assert answer.status_code == 400 and answer.json()["error"]["code"] == "policy_violation"
    assert upstream.received == []


# --- JSON answers ---------------------------------------------------------------------------------------

ANSWER_FIELDS: dict[str, Callable[[str], dict[str, Any]]] = {
    "content": lambda t: {"content": t},
    "reasoning_content": lambda t: {"content": "Here it is.", "reasoning_content": t},
    "refusal": lambda t: {"content": None, "refusal": t},
    "tool call arguments": lambda t: {"content": None, "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": "search", "arguments": _arguments(t)}}]},
    "function_call arguments": lambda t: {"content": None,
                                          "function_call": {"name": "search", "arguments": _arguments(t)}},
    "custom tool input": lambda t: {"content": None, "tool_calls": [
        {"id": "call_1", "type": "custom", "custom": {"name": "shell", "input": t}}]},
}


def _post_chat(running: RunningProxy, **extra: Any) -> httpx.Response:
    return httpx.post(running.url + "/v1/chat/completions", timeout=20,
                      json={"model": "m", "messages": [{"role": "user", "content": "hi"}], **extra})


@pytest.mark.parametrize("field", ANSWER_FIELDS)
def test_chat_answer_field_is_blocked_and_redacted(field: str, proxy: tuple[RunningProxy, ScriptedUpstream]) -> None:
    running, upstream = proxy
    upstream.script(Answer(json=chat_answer(ANSWER_FIELDS[field](f"All about {BANNED} here."))))
    answer = _post_chat(running)
    assert answer.status_code == 200 and b"zanzibar" not in answer.content
    parsed = ChatCompletion.model_validate(answer.json())
    assert parsed.choices[0].finish_reason == "content_filter"
    assert answer.headers["x-guardproxy-verdict"] == "blocked"
    upstream.script(Answer(json=chat_answer(ANSWER_FIELDS[field](f"The key is {SECRET} now."))))
    answer = _post_chat(running)
    assert SECRET.encode() not in answer.content and b"[SECRET]" in answer.content
    assert ChatCompletion.model_validate(answer.json()).choices[0].finish_reason == "stop"


def test_completions_answer_is_blocked(proxy: tuple[RunningProxy, ScriptedUpstream]) -> None:
    running, upstream = proxy
    upstream.script(Answer(json={"id": "c", "object": "text_completion", "created": 1, "model": "m", "choices": [
        {"index": 0, "text": f"About {BANNED}.", "logprobs": None, "finish_reason": "stop"},
        {"index": 1, "text": f"Key {SECRET} here.", "logprobs": None, "finish_reason": "stop"}]}))
    answer = httpx.post(running.url + "/v1/completions", json={"model": "m", "prompt": "hi", "n": 2})
    parsed = Completion.model_validate(answer.json())
    assert [c.finish_reason for c in parsed.choices] == ["content_filter", "stop"]
    assert parsed.choices[1].text == "Key [SECRET] here."
    assert b"zanzibar" not in answer.content and SECRET.encode() not in answer.content


def test_a_block_in_one_choice_withholds_that_choice_only(proxy: tuple[RunningProxy, ScriptedUpstream]) -> None:
    running, upstream = proxy
    upstream.script(Answer(json=chat_answer({"content": f"One: {BANNED}."}, {"content": f"Two: {SECRET} ok."},
                                            {"content": "Three."})))
    answer = _post_chat(running, n=3)
    parsed = ChatCompletion.model_validate(answer.json())
    assert [c.finish_reason for c in parsed.choices] == ["content_filter", "stop", "stop"]
    assert [c.message.content for c in parsed.choices[1:]] == ["Two: [SECRET] ok.", "Three."]
    assert b"zanzibar" not in answer.content and SECRET.encode() not in answer.content


# --- streams --------------------------------------------------------------------------------------------

def _stream_events(field: str, text: str) -> list[Any]:
    first = chat_chunk(role="assistant", content="")
    if field in ("content", "reasoning_content", "refusal"):
        deltas = [chat_chunk(**{field: piece}) for piece in split(text)]
    elif field == "tool call arguments":
        arguments = split(_arguments(text), 4)
        deltas = [chat_chunk(tool_calls=[{"index": 0, "id": "call_1", "type": "function",
                                          "function": {"name": "search", "arguments": ""}}])]
        deltas += [chat_chunk(tool_calls=[{"index": 0, "function": {"arguments": a}}]) for a in arguments]
    elif field == "custom tool input":
        # The SDK's chunk type allows only "function" as a streamed call's type, so the scripted upstream
        # would refuse the first delta: it goes as JSON text, unchecked. The rest carry no type.
        deltas = [json.dumps(chat_chunk(tool_calls=[{"index": 0, "id": "call_1", "type": "custom",
                                                     "custom": {"name": "shell", "input": ""}}]))]
        deltas += [chat_chunk(tool_calls=[{"index": 0, "custom": {"input": piece}}]) for piece in split(text, 4)]
    else:
        deltas = [chat_chunk(function_call={"name": "search", "arguments": ""})]
        deltas += [chat_chunk(function_call={"arguments": a}) for a in split(_arguments(text), 4)]
    return [first, *deltas, chat_chunk(finish="stop"), "[DONE]"]


def _streamed(running: RunningProxy, n: int = 1) -> tuple[bytes, list[Any]]:
    """The raw bytes the client got, and the chunks as the SDK parsed them."""
    with httpx.stream("POST", running.url + "/v1/chat/completions", timeout=20, json={
            "model": "m", "stream": True, "n": n, "messages": [{"role": "user", "content": "hi"}]}) as response:
        raw = response.read()
    chunks = [json.loads(line[6:]) for line in raw.decode().split("\n\n")
              if line.startswith("data: ") and line != "data: [DONE]"]
    assert raw.endswith(b"data: [DONE]\n\n")
    return raw, chunks


STREAM_FIELDS = ["content", "reasoning_content", "refusal", "tool call arguments", "function_call arguments",
                 "custom tool input"]


@pytest.mark.parametrize("field", STREAM_FIELDS)
def test_streamed_field_is_blocked_and_redacted(field: str, proxy: tuple[RunningProxy, ScriptedUpstream]) -> None:
    running, upstream = proxy
    upstream.script(Answer(events=_stream_events(field, f"Well, all about {BANNED} and more text after it.")))
    raw, chunks = _streamed(running)
    assert b"zanzibar" not in raw
    assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]][-1] == "content_filter"
    upstream.script(Answer(events=_stream_events(field, f"The key is {SECRET} and more text after it.")))
    raw, _ = _streamed(running)
    assert SECRET.encode() not in raw and b"[SECRET]" in raw
    assert b"guardproxy verdict=redacted" in raw


def test_a_streamed_custom_tool_call_comes_out_whole_as_a_custom_call(
        proxy: tuple[RunningProxy, ScriptedUpstream]) -> None:
    running, upstream = proxy
    upstream.script(Answer(events=_stream_events("custom tool input", f"The key is {SECRET} and more.")))
    _raw, chunks = _streamed(running)
    calls = [call for chunk in chunks for choice in chunk["choices"] for call in choice["delta"].get("tool_calls", [])]
    assert calls == [{"index": 0, "id": "call_1", "type": "custom",
                      "custom": {"name": "shell", "input": "The key is [SECRET] and more."}}]


def test_a_streamed_completion_is_blocked_and_redacted(proxy: tuple[RunningProxy, ScriptedUpstream]) -> None:
    def chunk(text: str, finish: str | None) -> dict[str, Any]:
        return {"id": "cmpl-1", "object": "text_completion", "created": 1, "model": "m",
                "choices": [{"index": 0, "text": text, "logprobs": None, "finish_reason": finish}]}

    def events(text: str) -> list[Any]:
        # The SDK's Completion type (which the scripted upstream checks) has no null finish_reason, which
        # the real API streams until the last chunk: those chunks go as JSON text.
        return [*(json.dumps(chunk(piece, None)) for piece in split(text)), chunk("", "stop"), "[DONE]"]

    running, upstream = proxy
    upstream.script(Answer(events=events(f"Well, all about {BANNED} and more text after it.")))
    with httpx.stream("POST", running.url + "/v1/completions", timeout=20,
                      json={"model": "m", "prompt": "hi", "stream": True}) as response:
        raw = response.read()
    assert b"zanzibar" not in raw and b"guardproxy verdict=blocked" in raw
    finishes = [c["finish_reason"] for line in raw.decode().split("\n\n")
                if line.startswith("data: {") for c in json.loads(line[6:])["choices"] if c["finish_reason"]]
    assert finishes == ["content_filter"]
    upstream.script(Answer(events=events(f"The key is {SECRET} and more text after it.")))
    stream = running.client().completions.create(model="m", prompt="hi", stream=True)
    assert "".join(c.text for chunk in stream for c in chunk.choices) == "The key is [SECRET] and more text after it."


def test_the_sdk_reads_a_guarded_stream_with_every_field(proxy: tuple[RunningProxy, ScriptedUpstream]) -> None:
    running, upstream = proxy
    events = [chat_chunk(role="assistant", content=""),
              *(chat_chunk(reasoning_content=p) for p in split(f"Thinking about {SECRET} first. ")),
              *(chat_chunk(content=p) for p in split("The answer is plain.")), chat_chunk(finish="stop"), "[DONE]"]
    upstream.script(Answer(events=events))
    stream = running.client().chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}],
                                                      stream=True)
    content = reasoning = ""
    for chunk in stream:
        for choice in chunk.choices:
            content += choice.delta.content or ""
            reasoning += getattr(choice.delta, "reasoning_content", None) or ""
    assert content == "The answer is plain."
    assert reasoning == "Thinking about [SECRET] first. "


def test_a_block_in_one_streamed_choice_ends_that_choice_only(proxy: tuple[RunningProxy, ScriptedUpstream]) -> None:
    running, upstream = proxy
    zero, one = split(f"Choice zero talks about {BANNED} at length. "), split("Choice one is fine and complete. ")
    events: list[Any] = []
    for index in range(max(len(zero), len(one))):
        if index < len(zero):
            events.append(chat_chunk(0, content=zero[index]))
        if index < len(one):
            events.append(chat_chunk(1, content=one[index]))
    events += [chat_chunk(0, finish="stop"), chat_chunk(1, finish="stop"), "[DONE]"]
    upstream.script(Answer(events=events))
    raw, chunks = _streamed(running, n=2)
    assert b"zanzibar" not in raw
    text = {0: "", 1: ""}
    finishes: dict[int, list[str]] = {0: [], 1: []}
    for chunk in chunks:
        for choice in chunk["choices"]:
            text[choice["index"]] += choice["delta"].get("content") or ""
            if choice["finish_reason"]:
                finishes[choice["index"]].append(choice["finish_reason"])
    assert finishes == {0: ["content_filter"], 1: ["stop"]}
    assert text[1] == "Choice one is fine and complete. "
    assert b"guardproxy verdict=blocked" in raw
