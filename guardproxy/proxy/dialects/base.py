"""What the proxy must know about one API shape, declared in one place.

A dialect says where text lives in a request, in a JSON answer and in stream
events; how a block is rendered on input, on a JSON answer and at the end of a
stream; and how usage is read. Extraction, rewriting, streaming, block rendering
and telemetry all ask the dialect; no other module knows a field name. Adding an
API is adding one module to ``dialects/`` and one line to its table.

Each dialect also names its upstream (``openai``, ``anthropic`` or ``azure``), its
error shape (``error_reply``, ``stream_error``) and its stream family: the
choice-based APIs stream through ``stream_guard.py``, the Responses API through
``responses_stream.py``, Anthropic Messages through ``messages_stream.py``.

The choice-based APIs (chat and text completions) share ``ChoiceStreamShape``:
a stream chunk carries ``choices``, each with an ``index``, text fields that
stream (held back and checked as they arrive), call fields whose arguments are
held whole until the choice ends, and a ``finish_reason``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, ClassVar, Protocol

from guardproxy.guards.base import PathPart, Segment
from guardproxy.proxy.errors import error_body, error_reply
from guardproxy.proxy.reply import RawHeaders, Reply
from guardproxy.proxy.sse import encode_data

ALL_CHOICES = -1  # a block that no single choice caused (a failing guard): every choice is withheld


class RequestShapeError(ValueError):
    """A request body the dialect cannot guard; answered with a 400 naming ``param``."""

    def __init__(self, message: str, code: str, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.param = param


@dataclass(frozen=True)
class ChoiceStreamShape:
    """Where a choice-based stream chunk keeps its text.

    ``holder``: the key of the object inside a choice that holds the fields
    (``delta`` for chat), or None when they sit on the choice itself.
    ``text_fields``: fields streamed as text, in the order they are checked;
    the first one takes ``annotate`` notes. ``calls``: whether the holder may
    carry call deltas, held whole until the choice ends (``HeldCalls`` in ``chat.py``).
    """

    holder: str | None
    text_fields: tuple[str, ...]
    calls: bool

    def holder_of(self, choice: dict[str, Any]) -> dict[str, Any] | None:
        if self.holder is None:
            return choice
        holder = choice.get(self.holder)
        return holder if isinstance(holder, dict) else None

    def path(self, index: int, field: str) -> tuple[PathPart, ...]:
        return ("choices", index, self.holder, field) if self.holder else ("choices", index, field)

    def empty_choice(self, index: int, finish_reason: str | None) -> dict[str, Any]:
        body: dict[str, Any] = {self.holder: {}} if self.holder else {self.text_fields[0]: ""}
        return {"index": index, **body, "logprobs": None, "finish_reason": finish_reason}


class CallBuffer(Protocol):
    """A streamed choice's call deltas, held whole until the choice ends."""

    def __bool__(self) -> bool: ...

    def take(self, holder: dict[str, Any]) -> bool: ...

    def message(self) -> dict[str, Any]: ...

    def segments(self, message: dict[str, Any]) -> list[Segment]: ...

    def delta(self, message: dict[str, Any]) -> dict[str, Any]: ...


class Dialect:
    """One API shape. Subclasses set the class attributes and override the methods
    that apply; the defaults describe an API with input text only."""

    name: ClassVar[str]  # the API: the route label in metrics, logs, traces and the verdict headers
    path: ClassVar[str]  # the canonical path it is served on
    upstream: ClassVar[str] = "openai"  # which upstream it goes to: openai, anthropic or azure
    provider: ClassVar[str] = "openai"  # OpenTelemetry's gen_ai.provider.name
    stream_family: ClassVar[str | None] = None  # choices, responses or messages: who guards its streams
    operation: ClassVar[str | None] = None  # OpenTelemetry's gen_ai.operation.name
    required: ClassVar[str]  # a request key without which the request is refused
    guards_output: ClassVar[bool] = False
    stream_shape: ClassVar[ChoiceStreamShape | None] = None
    usage_fields: ClassVar[dict[str, str]] = {"prompt_tokens": "input", "completion_tokens": "output"}  # key: direction

    def check_request(self, payload: dict[str, Any]) -> None:
        """Raise ``RequestShapeError`` for a body whose text the dialect cannot find."""
        if self.required not in payload:
            raise RequestShapeError(f"Missing required parameter: '{self.required}'.", "missing_required_parameter",
                                    self.required)

    def request_segments(self, payload: dict[str, Any]) -> list[Segment]:
        raise NotImplementedError

    def response_segments(self, payload: dict[str, Any]) -> list[Segment]:
        return []

    def choice_count(self, payload: dict[str, Any]) -> int:
        """How many choices the request asks for (``n``)."""
        n = payload.get("n")
        return n if isinstance(n, int) and not isinstance(n, bool) and n > 0 else 1

    def error_reply(self, status: int, message: str, type_: str, code: str | None = None, param: str | None = None,
                    headers: RawHeaders | None = None, **extra: Any) -> Reply:
        """An error the proxy itself answers on this API, in the API's own error shape."""
        return error_reply(status, message, type_, code, param, headers, **extra)

    def stream_error(self, status: int, message: str, type_: str, code: str) -> bytes:
        """The event that ends a stream which broke after it started."""
        return encode_data(error_body(message, type_, code))

    @staticmethod
    def choice_of(segment: Segment) -> int:
        """The choice a response segment belongs to."""
        path = segment.path
        return path[1] if len(path) > 1 and path[0] == "choices" and isinstance(path[1], int) else ALL_CHOICES

    def input_blocked(self, message: str, details: dict[str, Any], headers: RawHeaders) -> Reply:
        """The answer to a request whose input a guard blocked: 400 in the OpenAI error
        shape, with the guardrail's details (policy, chain, which guards fired)."""
        return self.error_reply(400, message, "guardrail_violation", "policy_violation", None, headers,
                                guardrail=details)

    def asks_stream(self, payload: dict[str, Any]) -> bool:
        """Whether the request asks for its answer as a stream (every streaming API here
        says so with ``"stream": true``)."""
        return self.stream_family is not None and payload.get("stream") is True

    def call_buffer(self) -> CallBuffer | None:
        """A new buffer for one streamed choice's calls, if the API streams calls."""
        return None

    def withhold(self, payload: dict[str, Any], choices: set[int], message: str) -> None:
        """Replace the answer of each blocked choice (``ALL_CHOICES``: every one) with ``message``."""
        raise NotImplementedError

    def annotate(self, payload: dict[str, Any], choices: set[int], suffix: str) -> None:
        """Append ``suffix`` to the answer of each of ``choices``."""

    @cached_property
    def usage_pattern(self) -> re.Pattern[bytes]:
        """A usage count in the bytes of an answer or a stream chunk: the key, then the number."""
        keys = b"|".join(re.escape(key.encode()) for key in self.usage_fields)
        return re.compile(rb'"(' + keys + rb')"\s*:\s*(\d+)')

    @cached_property
    def content_pattern(self) -> re.Pattern[bytes] | None:
        """The first content of a stream: a text field that is not empty, or the start of a call."""
        shape = self.stream_shape
        if shape is None:
            return None
        fields = b"|".join(re.escape(field.encode()) for field in shape.text_fields)
        calls = rb'|"(?:tool_calls|function_call)"\s*:\s*[\[{]' if shape.calls else b""
        return re.compile(rb'"(?:' + fields + rb')"\s*:\s*"(?!")' + calls)


def choices_of(payload: dict[str, Any]) -> Sequence[Any]:
    choices = payload.get("choices")
    return choices if isinstance(choices, list) else ()
