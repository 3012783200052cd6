"""``POST /v1/responses`` (the OpenAI Responses API).

Text in a request: ``instructions``; ``input`` as a string, or as items: message
items (a string, or ``input_text`` / ``output_text`` / ``refusal`` parts), the
arguments of earlier ``function_call`` items, and ``function_call_output`` items
(tool results, a string or ``input_text`` parts), and a ``custom_tool_call``'s
free-form input and its output. In an answer: each ``message`` item's
``output_text`` and ``refusal`` parts, each ``function_call`` item's arguments
and each ``custom_tool_call``'s input. A Responses answer is one response, not a set of choices, so every
segment belongs to choice 0 and a block withholds the whole answer: ``status:
"incomplete"`` with ``incomplete_details: {"reason": "content_filter"}``.

Server-side state is out of sight: with ``previous_response_id`` (or
``conversation``) the upstream adds earlier turns the proxy never sees in this
request; it checked them when they passed through it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import cached_property
from typing import Any

from guardproxy.guards.base import PathPart, Segment
from guardproxy.proxy.dialects.base import Dialect, RequestShapeError
from guardproxy.proxy.dialects.json_paths import argument_segments, text_segment

_PART_FIELDS = {"input_text": "text", "output_text": "text", "text": "text", "refusal": "refusal"}


def _parts(content: Any, path: tuple[PathPart, ...], role: str | None) -> Iterator[Segment]:
    if isinstance(content, list):
        for index, part in enumerate(content):
            field = _PART_FIELDS.get(str(part.get("type"))) if isinstance(part, dict) else None
            if field is not None:
                yield from text_segment(part.get(field), (*path, index, field), role)
    else:
        yield from text_segment(content, path, role)


def item_segments(item: Any, path: tuple[PathPart, ...]) -> Iterator[Segment]:
    """Text of one input item, or of one output item of an answer."""
    if not isinstance(item, dict):
        return
    kind = item.get("type", "message" if "role" in item else None)
    if kind == "message":
        role = item.get("role") if isinstance(item.get("role"), str) else None
        yield from _parts(item.get("content"), (*path, "content"), role)
    elif kind == "function_call":
        yield from argument_segments(item.get("arguments"), (*path, "arguments"), "assistant")
    elif kind == "function_call_output":
        yield from _parts(item.get("output"), (*path, "output"), "tool")
    elif kind == "custom_tool_call":  # a custom tool's free-form input: plain text, not JSON arguments
        yield from text_segment(item.get("input"), (*path, "input"), "assistant", call=True)
    elif kind == "custom_tool_call_output":
        yield from _parts(item.get("output"), (*path, "output"), "tool")


class ResponsesDialect(Dialect):
    name = "responses"
    path = "/v1/responses"
    operation = "chat"
    required = "input"
    guards_output = True
    stream_family = "responses"
    usage_fields = {"input_tokens": "input", "output_tokens": "output"}

    def check_request(self, payload: dict[str, Any]) -> None:
        value = payload.get("input")
        if value is not None and not isinstance(value, str) and not (
                isinstance(value, list) and all(isinstance(item, dict) for item in value)):
            raise RequestShapeError("'input' must be a string or an array of input items.", "invalid_type", "input")
        instructions = payload.get("instructions")
        if instructions is not None and not isinstance(instructions, str):
            raise RequestShapeError("'instructions' must be a string.", "invalid_type", "instructions")

    def request_segments(self, payload: dict[str, Any]) -> list[Segment]:
        segments = list(text_segment(payload.get("instructions"), ("instructions",), "system"))
        value = payload.get("input")
        if isinstance(value, str):
            segments.extend(text_segment(value, ("input",), "user"))
        elif isinstance(value, list):
            for index, item in enumerate(value):
                segments.extend(item_segments(item, ("input", index)))
        return segments

    def response_segments(self, payload: dict[str, Any]) -> list[Segment]:
        output = payload.get("output")
        if not isinstance(output, list):
            return []
        return [segment for index, item in enumerate(output) for segment in item_segments(item, ("output", index))]

    def choice_count(self, payload: dict[str, Any]) -> int:
        return 1

    @staticmethod
    def choice_of(segment: Segment) -> int:
        return 0

    def withhold(self, payload: dict[str, Any], choices: set[int], message: str) -> None:
        payload["status"] = "incomplete"
        payload["incomplete_details"] = {"reason": "content_filter"}
        payload["output"] = [withheld_message(payload.get("id"), message)] if message else []

    def annotate(self, payload: dict[str, Any], choices: set[int], suffix: str) -> None:
        output = payload.get("output")
        part = last_text_part(output if isinstance(output, list) else [])
        if part is not None:
            part["text"] += suffix

    @cached_property
    def content_pattern(self) -> re.Pattern[bytes] | None:
        return re.compile(rb'"type"\s*:\s*"response\.'
                          rb'(?:output_text|refusal|function_call_arguments|custom_tool_call_input)\.delta"'
                          rb'|"delta"\s*:\s*"(?!")')


def withheld_message(response_id: Any, message: str) -> dict[str, Any]:
    """The one output item of an answer a guard withheld: the policy's message."""
    suffix = response_id.removeprefix("resp_") if isinstance(response_id, str) else "0"
    return {"id": f"msg_guardproxy_{suffix}", "type": "message", "role": "assistant", "status": "incomplete",
            "content": [{"type": "output_text", "text": message, "annotations": []}]}


def last_text_part(output: list[Any]) -> dict[str, Any] | None:
    for item in reversed(output):
        if isinstance(item, dict) and item.get("type") == "message" and isinstance(item.get("content"), list):
            for part in reversed(item["content"]):
                if isinstance(part, dict) and part.get("type") == "output_text" and isinstance(part.get("text"), str):
                    return part
    return None
