"""Finding the text in OpenAI payloads, and writing rewritten text back.

Covers string content and content-part arrays (text parts only; image and audio
parts pass through), system/user/assistant/tool messages, tool-call and legacy
function-call arguments, the ``prompt`` of completions and the ``input`` of
embeddings. Token-id inputs (lists of ints) carry no text and are not scanned.

Tool-call arguments are JSON in a string. When they parse, each string value
becomes its own segment and a rewrite re-serialises the object, so a redaction
can never break the JSON the tool receives.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

from guardproxy.guards.base import PathPart, Segment

JSON_MARK = "$json"
_TEXT_PART_TYPES = {"text", "input_text", "output_text"}


def _argument_segments(arguments: Any, path: tuple[PathPart, ...], role: str | None) -> Iterator[Segment]:
    if not isinstance(arguments, str) or not arguments:
        return
    try:
        parsed = json.loads(arguments)
    except ValueError:
        yield Segment(arguments, path, role)
        return
    yield from _json_string_leaves(parsed, (*path, JSON_MARK), role)


def _json_string_leaves(value: Any, path: tuple[PathPart, ...], role: str | None) -> Iterator[Segment]:
    if isinstance(value, str):
        if value:
            yield Segment(value, path, role)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _json_string_leaves(item, (*path, key), role)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _json_string_leaves(item, (*path, index), role)


def _content_segments(content: Any, path: tuple[PathPart, ...], role: str | None) -> Iterator[Segment]:
    if isinstance(content, str):
        if content:
            yield Segment(content, path, role)
    elif isinstance(content, list):
        for index, part in enumerate(content):
            is_text = isinstance(part, dict) and part.get("type") in _TEXT_PART_TYPES
            if is_text and isinstance(part.get("text"), str) and part["text"]:
                yield Segment(part["text"], (*path, index, "text"), role)


def message_segments(message: Any, path: tuple[PathPart, ...]) -> Iterator[Segment]:
    """Text of one chat message (request) or one choice's ``message`` (response)."""
    if not isinstance(message, dict):
        return
    role = message.get("role") if isinstance(message.get("role"), str) else None
    yield from _content_segments(message.get("content"), (*path, "content"), role)
    tool_calls = message.get("tool_calls")
    if isinstance(tool_calls, list):
        for index, call in enumerate(tool_calls):
            function = call.get("function") if isinstance(call, dict) else None
            if isinstance(function, dict):
                yield from _argument_segments(
                    function.get("arguments"), (*path, "tool_calls", index, "function", "arguments"), role
                )
    function_call = message.get("function_call")
    if isinstance(function_call, dict):
        yield from _argument_segments(function_call.get("arguments"), (*path, "function_call", "arguments"), role)


def _strings(value: Any, path: tuple[PathPart, ...]) -> Iterator[Segment]:
    if isinstance(value, str):
        if value:
            yield Segment(value, path)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            if isinstance(item, str) and item:
                yield Segment(item, (*path, index))


def request_segments(endpoint: str, payload: dict[str, Any]) -> list[Segment]:
    if endpoint == "chat":
        messages = payload.get("messages")
        if not isinstance(messages, list):
            return []
        return [seg for i, m in enumerate(messages) for seg in message_segments(m, ("messages", i))]
    if endpoint == "completions":
        return list(_strings(payload.get("prompt"), ("prompt",)))
    if endpoint == "embeddings":
        return list(_strings(payload.get("input"), ("input",)))
    return []


def response_segments(endpoint: str, payload: dict[str, Any]) -> list[Segment]:
    choices = payload.get("choices")
    if not isinstance(choices, list):
        return []
    segments: list[Segment] = []
    for i, choice in enumerate(choices):
        if not isinstance(choice, dict):
            continue
        if endpoint == "chat":
            segments.extend(message_segments(choice.get("message"), ("choices", i, "message")))
        elif endpoint == "completions" and isinstance(choice.get("text"), str) and choice["text"]:
            segments.append(Segment(choice["text"], ("choices", i, "text"), "assistant"))
    return segments


def _set(container: Any, path: Sequence[PathPart], value: Any) -> None:
    for part in path[:-1]:
        container = container[part]
    container[path[-1]] = value


def _get(container: Any, path: Sequence[PathPart]) -> Any:
    for part in path:
        container = container[part]
    return container


def apply_texts(payload: Any, rewrites: Sequence[tuple[Segment, str]]) -> None:
    """Write each segment's new text back into ``payload`` in place."""
    arguments: dict[tuple[PathPart, ...], list[tuple[tuple[PathPart, ...], str]]] = {}
    for segment, text in rewrites:
        if JSON_MARK in segment.path:
            cut = segment.path.index(JSON_MARK)
            arguments.setdefault(segment.path[:cut], []).append((segment.path[cut + 1 :], text))
        else:
            _set(payload, segment.path, text)
    for path, leaves in arguments.items():
        parsed = json.loads(_get(payload, path))
        for leaf_path, text in leaves:
            if leaf_path:
                _set(parsed, leaf_path, text)
            else:
                parsed = text
        _set(payload, path, json.dumps(parsed, ensure_ascii=False))
