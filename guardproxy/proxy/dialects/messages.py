"""``POST /v1/messages`` and ``POST /v1/messages/count_tokens`` (the Anthropic Messages API).

Text in a request: ``system`` (a string or text blocks), and in each message its
content as a string or blocks: ``text`` blocks, the string values of ``tool_use``
input (an object, so each string leaf is its own segment and a redaction keeps
it an object), and ``tool_result`` content (a string or text blocks). In an
answer: text blocks and ``tool_use`` input. A message is one answer, so every
segment belongs to choice 0; a block withholds the whole answer with
``stop_reason: "refusal"``. ``thinking`` blocks are signed by the provider and
pass unchecked: changing one would break its signature.

Errors the proxy answers on these paths take Anthropic's shape:
``{"type": "error", "error": {"type": ..., "message": ...}}``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import cached_property
from typing import Any, ClassVar

from guardproxy.guards.base import PathPart, Segment
from guardproxy.proxy.dialects.base import Dialect, RequestShapeError
from guardproxy.proxy.dialects.json_paths import json_string_leaves, text_segment
from guardproxy.proxy.reply import RawHeaders, Reply
from guardproxy.proxy.sse import encode_event

# Anthropic's error types by status (https://docs.anthropic.com/en/api/errors).
_ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 402: "billing_error",
                403: "permission_error", 404: "not_found_error", 413: "request_too_large",
                415: "invalid_request_error", 429: "rate_limit_error", 504: "timeout_error", 529: "overloaded_error"}


def error_type(status: int) -> str:
    return _ERROR_TYPES.get(status, "invalid_request_error" if status < 500 else "api_error")


def anthropic_error(status: int, message: str, **extra: Any) -> dict[str, Any]:
    return {"type": "error", "error": {"type": error_type(status), "message": message, **extra}}


def _blocks(content: Any, path: tuple[PathPart, ...], role: str | None) -> Iterator[Segment]:
    """A string, or the text of text blocks, tool_use input and tool_result content."""
    if not isinstance(content, list):
        yield from text_segment(content, path, role)
        return
    for index, block in enumerate(content):
        if not isinstance(block, dict):
            continue
        kind = block.get("type")
        if kind == "text":
            yield from text_segment(block.get("text"), (*path, index, "text"), role)
        elif kind == "tool_use":
            yield from json_string_leaves(block.get("input"), (*path, index, "input"), "assistant", call=True)
        elif kind == "tool_result":
            yield from _blocks(block.get("content"), (*path, index, "content"), "tool")


class MessagesDialect(Dialect):
    name = "messages"
    path = "/v1/messages"
    operation: ClassVar[str | None] = "chat"
    required = "messages"
    upstream = "anthropic"
    provider = "anthropic"
    guards_output = True
    stream_family: ClassVar[str | None] = "messages"
    usage_fields = {"input_tokens": "input", "output_tokens": "output"}

    def check_request(self, payload: dict[str, Any]) -> None:
        super().check_request(payload)
        messages = payload["messages"]
        if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
            raise RequestShapeError("messages: Input should be a valid list of message objects", "invalid_type",
                                    "messages")
        system = payload.get("system")
        if system is not None and not isinstance(system, (str, list)):
            raise RequestShapeError("system: Input should be a string or a list of text blocks", "invalid_type",
                                    "system")

    def request_segments(self, payload: dict[str, Any]) -> list[Segment]:
        segments = list(_blocks(payload.get("system"), ("system",), "system"))
        for index, message in enumerate(payload["messages"]):
            role = message.get("role") if isinstance(message.get("role"), str) else None
            segments.extend(_blocks(message.get("content"), ("messages", index, "content"), role))
        return segments

    def response_segments(self, payload: dict[str, Any]) -> list[Segment]:
        return list(_blocks(payload.get("content"), ("content",), "assistant")) \
            if isinstance(payload.get("content"), list) else []

    def choice_count(self, payload: dict[str, Any]) -> int:
        return 1

    @staticmethod
    def choice_of(segment: Segment) -> int:
        return 0

    def error_reply(self, status: int, message: str, type_: str, code: str | None = None, param: str | None = None,
                    headers: RawHeaders | None = None, **extra: Any) -> Reply:
        return Reply.json(status, anthropic_error(status, message, **extra), headers)

    def stream_error(self, status: int, message: str, type_: str, code: str) -> bytes:
        return encode_event("error", anthropic_error(status, message))

    def withhold(self, payload: dict[str, Any], choices: set[int], message: str) -> None:
        payload["content"] = [{"type": "text", "text": message}] if message else []
        payload["stop_reason"] = "refusal"
        payload["stop_sequence"] = None

    def annotate(self, payload: dict[str, Any], choices: set[int], suffix: str) -> None:
        content = payload.get("content")
        for block in reversed(content if isinstance(content, list) else []):
            if isinstance(block, dict) and block.get("type") == "text" and isinstance(block.get("text"), str):
                block["text"] += suffix
                return

    @cached_property
    def content_pattern(self) -> re.Pattern[bytes] | None:
        return re.compile(rb'"(?:text|partial_json)"\s*:\s*"(?!")|"type"\s*:\s*"tool_use"')


class CountTokensDialect(MessagesDialect):
    """Input guards only: the answer is a number."""

    name = "count_tokens"
    path = "/v1/messages/count_tokens"
    operation = None
    guards_output = False
    stream_family = None
    usage_fields = {"input_tokens": "input"}

    @cached_property
    def content_pattern(self) -> re.Pattern[bytes] | None:
        return None
