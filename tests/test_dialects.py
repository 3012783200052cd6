"""Finding text in OpenAI payloads and writing it back."""

from __future__ import annotations

import copy
import json
from typing import Any

from guardproxy.guards import Segment
from guardproxy.proxy.dialects import DIALECTS, apply_texts

_PATHS = {"chat": "/v1/chat/completions", "completions": "/v1/completions", "embeddings": "/v1/embeddings"}


def request_segments(endpoint: str, payload: dict[str, Any]) -> list[Segment]:
    return DIALECTS[_PATHS[endpoint]].request_segments(payload)


def response_segments(endpoint: str, payload: dict[str, Any]) -> list[Segment]:
    return DIALECTS[_PATHS[endpoint]].response_segments(payload)

CHAT = {
    "model": "m",
    "messages": [
        {"role": "system", "content": "sys"},
        {"role": "user", "content": [{"type": "text", "text": "part one"},
                                     {"type": "image_url", "image_url": {"url": "http://x/y.png"}},
                                     {"type": "text", "text": ""}]},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "f", "arguments": '{"a": "x", "n": 3, "l": ["y"]}'}},
            {"id": "c2", "type": "function", "function": {"name": "g", "arguments": "not json"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "tool says"},
        {"role": "assistant", "function_call": {"name": "h", "arguments": '"bare string"'}},
    ],
    "unknown": {"kept": True},
}


def test_chat_request_segments_cover_every_text() -> None:
    segments = request_segments("chat", CHAT)
    assert [(s.text, s.role) for s in segments] == [
        ("sys", "system"), ("part one", "user"), ("x", "assistant"), ("y", "assistant"),
        ("not json", "assistant"), ("tool says", "tool"), ("bare string", "assistant"),
    ]
    assert segments[1].path == ("messages", 1, "content", 0, "text")
    assert segments[2].path == ("messages", 2, "tool_calls", 0, "function", "arguments", "$json", "a")


def test_apply_texts_rewrites_only_what_changed_and_keeps_json_valid() -> None:
    payload = copy.deepcopy(CHAT)
    segments = request_segments("chat", payload)
    apply_texts(payload, [(segments[1], "PART"), (segments[2], 'has "quotes" \\ and [X]'),
                          (segments[4], "still not json"), (segments[6], "[B]")])
    assert payload["messages"][1]["content"][0]["text"] == "PART"
    assert payload["messages"][1]["content"][1] == CHAT["messages"][1]["content"][1]  # type: ignore[index]
    args = json.loads(payload["messages"][2]["tool_calls"][0]["function"]["arguments"])
    assert args == {"a": 'has "quotes" \\ and [X]', "n": 3, "l": ["y"]}
    assert payload["messages"][2]["tool_calls"][1]["function"]["arguments"] == "still not json"
    assert json.loads(payload["messages"][4]["function_call"]["arguments"]) == "[B]"
    assert payload["unknown"] == {"kept": True}


def test_completions_and_embeddings_inputs() -> None:
    assert [s.text for s in request_segments("completions", {"prompt": ["a", "b", ""]})] == ["a", "b"]
    assert [s.text for s in request_segments("completions", {"prompt": "one"})] == ["one"]
    assert request_segments("completions", {"prompt": [1, 2, 3]}) == []  # token ids carry no text
    assert [s.path for s in request_segments("embeddings", {"input": ["x", "y"]})] == [("input", 0), ("input", 1)]


def test_response_segments() -> None:
    chat = {"choices": [{"index": 0, "message": {"role": "assistant", "content": "hi", "tool_calls": [
        {"id": "c", "type": "function", "function": {"name": "f", "arguments": '{"q": "z"}'}}]}}]}
    assert [s.text for s in response_segments("chat", chat)] == ["hi", "z"]
    completion = {"choices": [{"index": 0, "text": " done"}, {"index": 1, "text": ""}]}
    found = [(s.text, s.path) for s in response_segments("completions", completion)]
    assert found == [(" done", ("choices", 0, "text"))]
    assert response_segments("chat", {"choices": "garbage"}) == []


def test_custom_tool_input_and_refusal_parts_are_text() -> None:
    """Custom tools (``type: custom``) take free-form input, not JSON arguments; an assistant's
    refusal part comes back in later requests. Both are checked like any other text."""
    payload = {"model": "m", "messages": [
        {"role": "assistant", "content": [{"type": "refusal", "refusal": "I cannot share sk-secret"}],
         "tool_calls": [{"id": "c1", "type": "custom", "custom": {"name": "sql", "input": "DROP TABLE x"}}]},
    ]}
    segments = request_segments("chat", payload)
    assert [(s.text, s.path) for s in segments] == [
        ("I cannot share sk-secret", ("messages", 0, "content", 0, "refusal")),
        ("DROP TABLE x", ("messages", 0, "tool_calls", 0, "custom", "input")),
    ]
    apply_texts(payload, [(segments[0], "I cannot share [SECRET]"), (segments[1], "[BLOCKED]")])
    assert payload["messages"][0]["content"][0] == {"type": "refusal", "refusal": "I cannot share [SECRET]"}
    assert payload["messages"][0]["tool_calls"][0]["custom"] == {"name": "sql", "input": "[BLOCKED]"}
    answer = {"choices": [{"index": 0, "message": {"role": "assistant", "content": None, "tool_calls": [
        {"id": "c", "type": "custom", "custom": {"name": "sql", "input": "SELECT secret"}}]}}]}
    assert [(s.text, s.path) for s in response_segments("chat", answer)] == [
        ("SELECT secret", ("choices", 0, "message", "tool_calls", 0, "custom", "input"))]


def test_responses_custom_tool_calls_and_their_outputs_are_text() -> None:
    dialect = DIALECTS["/v1/responses"]
    request = {"model": "m", "input": [
        {"type": "custom_tool_call", "call_id": "c1", "name": "sql", "input": "SELECT * FROM users"},
        {"type": "custom_tool_call_output", "call_id": "c1", "output": "alice@example.org"},
        {"type": "custom_tool_call_output", "call_id": "c2", "output": [{"type": "input_text", "text": "bob"}]},
    ]}
    assert [(s.text, s.path, s.role) for s in dialect.request_segments(request)] == [
        ("SELECT * FROM users", ("input", 0, "input"), "assistant"),
        ("alice@example.org", ("input", 1, "output"), "tool"),
        ("bob", ("input", 2, "output", 0, "text"), "tool"),
    ]
    answer = {"output": [{"type": "custom_tool_call", "call_id": "c", "name": "sql", "input": "DROP TABLE x"}]}
    assert [s.text for s in dialect.response_segments(answer)] == ["DROP TABLE x"]


_TOOL_CALL_SAMPLES: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "/v1/chat/completions": (
        {"model": "m", "messages": [
            {"role": "user", "content": "prose: plan the trip"},
            {"role": "assistant", "content": "prose: calling tools", "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "f", "arguments": '{"city": "call: Rome"}'}},
                {"id": "c2", "type": "custom", "custom": {"name": "sql", "input": "call: SELECT 1"}}]},
            {"role": "assistant", "function_call": {"name": "h", "arguments": "call: not json"}},
            {"role": "tool", "tool_call_id": "c1", "content": "prose: sunny"}]},
        {"choices": [{"index": 0, "message": {"role": "assistant", "content": "prose: here", "refusal": "prose: no",
                                              "tool_calls": [
            {"id": "c", "type": "function", "function": {"name": "f", "arguments": '{"q": ["call: a", "call: b"]}'}},
            {"id": "d", "type": "custom", "custom": {"name": "sql", "input": "call: DROP"}}]}},
                     {"index": 1, "message": {"role": "assistant", "content": None,
                                              "function_call": {"name": "h", "arguments": '{"x": "call: legacy"}'}}}]},
    ),
    "/v1/responses": (
        {"model": "m", "instructions": "prose: be brief", "input": [
            {"role": "user", "content": [{"type": "input_text", "text": "prose: weather?"}]},
            {"type": "function_call", "call_id": "c1", "name": "f", "arguments": '{"city": "call: Oslo"}'},
            {"type": "function_call_output", "call_id": "c1", "output": "prose: rain"},
            {"type": "custom_tool_call", "call_id": "c2", "name": "sql", "input": "call: SELECT 2"},
            {"type": "custom_tool_call_output", "call_id": "c2", "output": "prose: 2"}]},
        {"output": [
            {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "prose: ok"},
                                                                 {"type": "refusal", "refusal": "prose: no"}]},
            {"type": "function_call", "call_id": "c", "name": "f", "arguments": '{"q": "call: Bergen"}'},
            {"type": "custom_tool_call", "call_id": "d", "name": "sql", "input": "call: DROP"}]},
    ),
    "/v1/messages": (
        {"model": "m", "max_tokens": 9, "system": [{"type": "text", "text": "prose: be brief"}], "messages": [
            {"role": "user", "content": "prose: weather?"},
            {"role": "assistant", "content": [
                {"type": "text", "text": "prose: checking"},
                {"type": "tool_use", "id": "t1", "name": "f", "input": {"city": "call: Lima", "days": ["call: 2"]}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1",
                                          "content": [{"type": "text", "text": "prose: fog"}]}]}]},
        {"content": [{"type": "text", "text": "prose: ok"},
                     {"type": "tool_use", "id": "t", "name": "f", "input": {"q": {"deep": "call: Quito"}}}]},
    ),
}


def test_every_dialect_marks_the_text_tool_calls_carry() -> None:
    """Tool-call arguments, custom tool inputs and ``tool_use`` input are data for a tool
    (``call``); every other text is prose. The samples spell which is which in the text."""
    for path, (request, answer) in _TOOL_CALL_SAMPLES.items():
        dialect = DIALECTS[path]
        for segments in (dialect.request_segments(request), dialect.response_segments(answer)):
            assert any(s.call for s in segments) and not all(s.call for s in segments), path
            assert [s.call for s in segments] == [s.text.startswith("call: ") for s in segments], (path, segments)


def test_a_streamed_chat_choice_s_held_calls_are_marked() -> None:
    held = DIALECTS["/v1/chat/completions"].call_buffer()
    assert held is not None
    held.take({"tool_calls": [{"index": 0, "id": "c", "type": "function", "function": {"name": "f", "arguments": '{'}},
                              {"index": 1, "type": "custom", "custom": {"name": "sql", "input": "SELECT"}}]})
    held.take({"tool_calls": [{"index": 0, "function": {"arguments": '"a": "x"}'}}],
               "function_call": {"name": "h", "arguments": "legacy"}})
    segments = held.segments(held.message())
    assert [(s.text, s.call) for s in segments] == [("x", True), ("SELECT", True), ("legacy", True)]
