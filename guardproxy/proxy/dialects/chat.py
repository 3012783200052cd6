"""``POST /v1/chat/completions``.

Text in a request: every message's ``content`` (a string, or the text parts of
a content array; image and audio parts pass through), an assistant message's
``reasoning_content`` and ``refusal`` (and refusal content parts), the arguments
of its ``tool_calls`` (a custom tool's free-form ``input`` too) and legacy
``function_call``. In an answer the same fields of each choice's
``message``, and in a stream the same fields of each choice's ``delta``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

from guardproxy.guards.base import PathPart, Segment
from guardproxy.proxy.dialects.base import ALL_CHOICES, ChoiceStreamShape, Dialect, RequestShapeError, choices_of
from guardproxy.proxy.dialects.json_paths import argument_segments, text_segment

TEXT_FIELDS = ("content", "reasoning_content", "refusal")
_TEXT_PART_TYPES = {"text", "input_text", "output_text"}
_WITHHELD_FIELDS = ("tool_calls", "function_call", "reasoning_content", "refusal", "audio", "annotations")


def _content_segments(content: Any, path: tuple[PathPart, ...], role: str | None) -> Iterator[Segment]:
    if isinstance(content, list):
        for index, part in enumerate(content):
            kind = part.get("type") if isinstance(part, dict) else None
            if isinstance(kind, str) and kind in _TEXT_PART_TYPES:  # a type that is an array: no text, no crash
                yield from text_segment(part.get("text"), (*path, index, "text"), role)
            elif kind == "refusal":  # an assistant message's refusal part, sent back in a conversation
                yield from text_segment(part.get("refusal"), (*path, index, "refusal"), role)
    else:
        yield from text_segment(content, path, role)


def message_segments(message: Any, path: tuple[PathPart, ...]) -> Iterator[Segment]:
    """Text of one request message, or of one choice's ``message`` in an answer."""
    if not isinstance(message, dict):
        return
    role = message.get("role") if isinstance(message.get("role"), str) else None
    yield from _content_segments(message.get("content"), (*path, "content"), role)
    for field in TEXT_FIELDS[1:]:
        yield from text_segment(message.get(field), (*path, field), role)
    tool_calls = message.get("tool_calls")
    if isinstance(tool_calls, list):
        for index, call in enumerate(tool_calls):
            function = call.get("function") if isinstance(call, dict) else None
            if isinstance(function, dict):
                yield from argument_segments(function.get("arguments"),
                                             (*path, "tool_calls", index, "function", "arguments"), role)
            custom = call.get("custom") if isinstance(call, dict) else None
            if isinstance(custom, dict):  # a custom tool's free-form input: plain text, not JSON arguments
                yield from text_segment(custom.get("input"), (*path, "tool_calls", index, "custom", "input"), role,
                                        call=True)
    function_call = message.get("function_call")
    if isinstance(function_call, dict):
        yield from argument_segments(function_call.get("arguments"), (*path, "function_call", "arguments"), role)


class ChatDialect(Dialect):
    name = "chat"
    path = "/v1/chat/completions"
    operation = "chat"
    required = "messages"
    guards_output = True
    stream_family = "choices"
    stream_shape: ClassVar[ChoiceStreamShape | None] = ChoiceStreamShape("delta", TEXT_FIELDS, calls=True)


    def call_buffer(self) -> HeldCalls:
        return HeldCalls()

    def check_request(self, payload: dict[str, Any]) -> None:
        super().check_request(payload)
        messages = payload["messages"]
        if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
            raise RequestShapeError("'messages' must be an array of message objects.", "invalid_type", "messages")

    def request_segments(self, payload: dict[str, Any]) -> list[Segment]:
        return [segment for index, message in enumerate(payload["messages"])
                for segment in message_segments(message, ("messages", index))]

    def response_segments(self, payload: dict[str, Any]) -> list[Segment]:
        return [segment for index, choice in enumerate(choices_of(payload)) if isinstance(choice, dict)
                for segment in message_segments(choice.get("message"), ("choices", index, "message"))]

    def withhold(self, payload: dict[str, Any], choices: set[int], message: str) -> None:
        for index, choice in enumerate(choices_of(payload)):
            if not isinstance(choice, dict) or not (ALL_CHOICES in choices or index in choices):
                continue
            answer = choice["message"] if isinstance(choice.get("message"), dict) else {}
            for field in _WITHHELD_FIELDS:
                answer.pop(field, None)
            answer["role"] = "assistant"
            answer["content"] = message
            choice["message"] = answer
            choice["finish_reason"] = "content_filter"
            if "logprobs" in choice:
                choice["logprobs"] = None

    def annotate(self, payload: dict[str, Any], choices: set[int], suffix: str) -> None:
        for index, choice in enumerate(choices_of(payload)):
            message = choice.get("message") if isinstance(choice, dict) else None
            if index in choices and isinstance(message, dict) and isinstance(message.get("content"), str):
                message["content"] += suffix


class HeldCalls:
    """A streamed choice's tool calls (function and custom) and legacy function call,
    accumulated from their deltas and held whole until the choice ends: a half-sent call
    cannot be recalled."""

    def __init__(self) -> None:
        self._tool_calls: dict[int, dict[str, Any]] = {}
        self._function_call: dict[str, Any] | None = None

    def __bool__(self) -> bool:
        return bool(self._tool_calls) or self._function_call is not None

    def take(self, holder: dict[str, Any]) -> bool:
        """Move the call deltas out of a streamed ``delta``; whether it had any."""
        tool_deltas = holder.pop("tool_calls", None)
        function_delta = holder.pop("function_call", None)
        for delta in tool_deltas if isinstance(tool_deltas, list) else []:
            if isinstance(delta, dict):
                self._add_tool_delta(delta)
        if isinstance(function_delta, dict):
            call = self._function_call = self._function_call or {"arguments": ""}
            if "name" in function_delta:
                call["name"] = function_delta["name"]
            call["arguments"] += _piece(function_delta.get("arguments"))
        return tool_deltas is not None or function_delta is not None

    def _add_tool_delta(self, delta: dict[str, Any]) -> None:
        index = delta.get("index", 0)
        if not isinstance(index, int) or isinstance(index, bool):
            return  # no call to add it to: a malformed delta is dropped, never sent unchecked
        call = self._tool_calls.setdefault(index, {"index": index})
        for key in ("id", "type"):
            if key in delta:
                call[key] = delta[key]
        # A function call streams its JSON ``arguments``; a custom tool call its free-form ``input``.
        for kind, text_key in _CALL_TEXT.items():
            body = delta.get(kind)
            if isinstance(body, dict):
                held = call.setdefault(kind, {text_key: ""})
                if "name" in body:
                    held["name"] = body["name"]
                held[text_key] += _piece(body.get(text_key))

    def message(self) -> dict[str, Any]:
        """The calls as an assistant message, whose segments the output chain checks."""
        message: dict[str, Any] = {"role": "assistant"}
        if self._tool_calls:
            message["tool_calls"] = [_with_body(self._tool_calls[i]) for i in sorted(self._tool_calls)]
        if self._function_call is not None:
            message["function_call"] = self._function_call
        return message

    @staticmethod
    def segments(message: dict[str, Any]) -> list[Segment]:
        return list(message_segments(message, ()))

    @staticmethod
    def delta(message: dict[str, Any]) -> dict[str, Any]:
        """The (checked, possibly rewritten) calls as one streamed ``delta``."""
        return {key: message[key] for key in ("tool_calls", "function_call") if key in message}


_CALL_TEXT = {"function": "arguments", "custom": "input"}  # a streamed tool call's body: the key of its text


def _with_body(call: dict[str, Any]) -> dict[str, Any]:
    """A held tool call whose deltas carried no body still goes out as a call of its type."""
    if not any(kind in call for kind in _CALL_TEXT):
        kind = "custom" if call.get("type") == "custom" else "function"
        call[kind] = {_CALL_TEXT[kind]: ""}
    return call


def _piece(text: Any) -> str:
    """A streamed piece of call arguments or input; anything but a string adds nothing."""
    return text if isinstance(text, str) else ""
