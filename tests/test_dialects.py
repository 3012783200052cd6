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
