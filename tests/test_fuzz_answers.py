"""Upstream answers under fuzzing: what the output stage does with answers of the right
kind but the wrong shape somewhere (a value of the wrong type at any depth).

A bad answer may be withheld or end a stream with an error in the API's shape (a
502 is the upstream's fault, not the proxy's); it must never crash the proxy. Two
levels: the dialects' own answer handling (text extraction, withholding, notes,
streamed call deltas), called directly; and whole streams of such events from the
scripted upstream through a running proxy with output guards.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from guardproxy import json_codec
from guardproxy.proxy.dialects import ALL_CHOICES, DIALECTS
from guardproxy.proxy.dialects.chat import HeldCalls
from tests.api_payloads import EMAIL, RESPONSES, arguments, ids, names, near_valid, texts
from tests.fuzz_proxy import PATHS, Stack, answered_whole, assert_no_crash, post, running_stack
from tests.fuzzing import fuzz_settings
from tests.scripted_upstream import Answer, Raw, chat_chunk, messages_events, responses_events, split

DIALECT_OF = {d.name: d for d in DIALECTS.values()}
_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5)


def wrong_values() -> st.SearchStrategy[Any]:
    return st.one_of(_scalars, st.just([]), st.just({}), st.just([[]]), st.just({"a": []}),
                     st.lists(_scalars, max_size=2), st.dictionaries(st.text(max_size=3), _scalars, max_size=2))


@st.composite
def answers(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    api = draw(st.sampled_from(sorted(RESPONSES)))
    return api, draw(near_valid(RESPONSES[api], wrong_values))


@fuzz_settings(200)
@given(answers(), st.sampled_from([{0}, {ALL_CHOICES}, {1}, set()]))
def test_answers_of_the_wrong_shape_are_read_withheld_and_noted(case: tuple[str, Any], choices: set[int]) -> None:
    api, payload = case
    if not isinstance(payload, dict):
        return  # the handler withholds an answer that is not an object before any dialect sees it
    dialect = DIALECT_OF[api]
    for segment in dialect.response_segments(payload):
        dialect.choice_of(segment)
    dialect.annotate(payload, choices, "\n\nA note.")
    dialect.withhold(payload, choices, "Withheld.")
    json_codec.dumps(payload)


call_delta = st.fixed_dictionaries({}, optional={
    "index": st.integers(0, 2) | wrong_values(), "id": ids | wrong_values(), "type": st.just("function"),
    "function": st.fixed_dictionaries({}, optional={"name": names | wrong_values(),
                                                    "arguments": arguments | wrong_values()}) | wrong_values()})
holder = st.fixed_dictionaries({}, optional={
    "tool_calls": st.lists(call_delta | wrong_values(), max_size=3) | wrong_values(),
    "function_call": st.fixed_dictionaries({}, optional={"name": names | wrong_values(),
                                                         "arguments": arguments | wrong_values()}) | wrong_values()})


@fuzz_settings(200)
@given(st.lists(holder, min_size=1, max_size=5))
def test_streamed_call_deltas_of_any_shape_are_held(deltas: list[dict[str, Any]]) -> None:
    """A chat stream's call deltas (``HeldCalls``): whatever they hold, they are taken,
    assembled into a message, read for text and sent on as one delta."""
    calls = HeldCalls()
    for delta in deltas:
        calls.take(delta)
    if calls:
        message = calls.message()
        calls.segments(message)
        json_codec.dumps(calls.delta(message))


@pytest.mark.parametrize("deltas", [
    [{"tool_calls": [{"index": [1], "function": {"arguments": "{}"}}]}],  # unhashable index: TypeError
    [{"tool_calls": [{"index": 0}]}, {"tool_calls": [{"index": None}]}],  # None and 0 could not be sorted
    [{"tool_calls": [{"index": 0, "function": {"name": "f", "arguments": True}}]}],  # str + bool
    [{"function_call": {"name": "f", "arguments": ["x"]}}],  # str + list
    [{"tool_calls": [{"index": 0, "function": "f"}]}],  # a function that is a string
], ids=["index an array", "index null", "arguments a boolean", "function_call arguments an array",
        "function a string"])
def test_call_deltas_that_crashed_the_chat_stream(deltas: list[dict[str, Any]]) -> None:
    """Regressions found by the property above: each raised in ``HeldCalls`` (chat.py), which
    ended a guarded chat stream with an unhandled exception."""
    test_streamed_call_deltas_of_any_shape_are_held.hypothesis.inner_test(deltas)  # type: ignore[attr-defined]


# -- whole streams through the proxy --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("answers")) as running:
        yield running


def _completion(text: Any, finish: Any) -> dict[str, Any]:
    return {"id": "cmpl-1", "object": "text_completion", "created": 1, "model": "m",
            "choices": [{"index": 0, "text": text, "logprobs": None, "finish_reason": finish}]}


def valid_events(api: str, pieces: list[str], call: tuple[str, str] | None) -> list[Any]:
    if api == "responses":
        return responses_events(call=(call[0], split(call[1], 5))) if call else responses_events(pieces)
    if api == "messages":
        return messages_events(tool=(call[0], split(call[1], 5))) if call else messages_events(pieces)
    if api == "completions":
        return [*(_completion(p, None) for p in pieces), _completion("", "stop"), "[DONE]"]
    events = [chat_chunk(role="assistant", content=""), *(chat_chunk(content=p) for p in pieces)]
    if call:
        events += [chat_chunk(tool_calls=[{"index": 0, "id": "call_1", "type": "function",
                                           "function": {"name": call[0], "arguments": ""}}]),
                   *(chat_chunk(tool_calls=[{"index": 0, "function": {"arguments": p}}]) for p in split(call[1], 5))]
    return [*events, chat_chunk(finish="tool_calls" if call else "stop"), "[DONE]"]


def sse(event: Any) -> Raw:
    if not isinstance(event, dict):
        return Raw(f"data: {event if isinstance(event, str) else json.dumps(event)}\n\n".encode())
    name = f"event: {event['type']}\n" if isinstance(event.get("type"), str) else ""
    return Raw(f"{name}data: {json.dumps(event)}\n\n".encode())


_REQUESTS = {"chat": {"model": "m", "messages": [{"role": "user", "content": "hi"}]},
             "completions": {"model": "m", "prompt": "hi"},
             "responses": {"model": "m", "input": "hi"},
             "messages": {"model": "m", "max_tokens": 50, "messages": [{"role": "user", "content": "hi"}]}}


def streamed(stack: Stack, api: str, body: dict[str, Any], events: list[Any]) -> httpx.Response:
    """``body`` sent to ``api``, whose upstream answers with ``events``."""
    stack.upstream.script(Answer(events=[sse(e) for e in events]))
    return stack.client.post(stack.url + PATHS[api], json=body,
                             headers={"authorization": "Bearer sk-client", "x-api-key": "k"})


@st.composite
def streams(draw: st.DrawFn) -> tuple[str, list[Any], int]:
    api = draw(st.sampled_from(sorted(_REQUESTS)))
    pieces = draw(st.lists(texts, max_size=4))
    call = None
    if api != "completions" and draw(st.booleans()):
        call = ("lookup", draw(st.dictionaries(st.text(max_size=4), texts, max_size=2).map(json.dumps)
                               if api == "messages" else arguments))
    events = valid_events(api, pieces, call)
    for _ in range(draw(st.integers(0, 2))):
        at = draw(st.integers(0, len(events) - 1))
        if isinstance(events[at], dict):
            events[at] = draw(near_valid(st.just(events[at]), wrong_values))
    return api, events, draw(st.integers(1, 2))


@fuzz_settings(80)
@given(streams())
def test_streams_of_events_of_the_wrong_shape_never_crash_the_proxy(stack: Stack, case: tuple[str, list[Any], int]
                                                                    ) -> None:
    api, events, n = case
    body = {**_REQUESTS[api], "stream": True, **({"n": n} if api in ("chat", "completions") else {})}
    what = f"{api} stream of {events}"
    with answered_whole(stack, what):
        response = streamed(stack, api, body, events)
    assert_no_crash(stack, what, response.status_code, response.text)


def test_the_stack_is_the_request_path_ones(stack: Stack) -> None:
    assert post(stack, "chat", b'{"model": "m", "messages": []}', {}).status_code == 200


def test_a_chat_stream_with_a_malformed_call_delta_ends_cleanly(stack: Stack) -> None:
    """The deltas above, end to end: the stream used to stop mid-way with an unhandled TypeError."""
    events = valid_events("chat", ["Hello"], ("lookup", '{"a": 1}'))
    events.insert(-2, chat_chunk(tool_calls=[{"index": [1], "function": {"arguments": "x"}}]))
    with answered_whole(stack, "malformed call delta"):
        response = streamed(stack, "chat", {**_REQUESTS["chat"], "stream": True}, events)
    assert_no_crash(stack, "malformed call delta", response.status_code, response.text)
    assert response.text.rstrip().endswith("data: [DONE]")



@pytest.mark.parametrize(("at", "output_index", "text"), [
    (3, {}, "Hello"),  # response.content_part.added
    (4, None, f"{EMAIL} {EMAIL}"),  # response.output_text.delta, a text released (and redacted) at once
    (5, None, "Hello"),  # response.output_text.done
], ids=["part added, index an object", "text delta, index null", "text done, index null"])
def test_a_responses_event_with_an_output_index_of_the_wrong_type(stack: Stack, at: int, output_index: Any,
                                                                  text: str) -> None:
    """Found by the stream property above: the guarded Responses stream stops with an unhandled
    exception (the client's connection is cut) instead of ending with a bad_stream error event."""
    events = valid_events("responses", [text], None)
    events[at] = {**events[at], "output_index": output_index}
    with answered_whole(stack, f"output_index {output_index!r}"):
        response = streamed(stack, "responses", {**_REQUESTS["responses"], "stream": True}, events)
    assert_no_crash(stack, f"output_index {output_index!r}", response.status_code, response.text)
