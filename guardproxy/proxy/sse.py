"""Server-sent events: splitting an upstream byte stream into events, and writing events.

Events keep their raw bytes, so an event the proxy does not change leaves
byte for byte as it arrived.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

# A line end (CRLF, a lone CR, LF) then a blank line: the end of an event, however line ends mix.
_EVENT_END = re.compile(rb"(?:\r\n|\r(?!\n)|\n)(?:\r\n|\r|\n)")
_BOM = b"\xef\xbb\xbf"
_LINE = re.compile(r"\r\n|\n|\r")


@dataclass(frozen=True, slots=True)
class SSEEvent:
    raw: bytes
    data: str | None  # the joined data lines; None if the event had none (a comment)
    event: str | None = None

    def json(self) -> Any:
        """The data as JSON, or None when it is not JSON (``[DONE]``, garbage)."""
        if self.data is None:
            return None
        try:
            return json.loads(self.data)
        except ValueError:
            return None


def parse_event(raw: bytes, first: bool = False) -> SSEEvent:
    """``first``: the stream's first event, whose leading byte order mark is not part of its first field."""
    data_lines: list[str] = []
    event_name: str | None = None
    for line in _LINE.split((raw.removeprefix(_BOM) if first else raw).decode("utf-8", errors="replace")):
        if not line or line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            data_lines.append(value)
        elif name == "event":
            event_name = value
    return SSEEvent(raw, "\n".join(data_lines) if data_lines else None, event_name)


class SSEDecoder:
    """Incremental: feed bytes as they arrive, get whole events out. Events end where the
    WHATWG standard ends them, whatever the reads' boundaries."""

    def __init__(self, max_event_bytes: int = 16 * 1024 * 1024) -> None:
        self._buffer = bytearray()
        self._max = max_event_bytes
        self._started = False

    def feed(self, chunk: bytes) -> Iterator[SSEEvent]:
        self._buffer += chunk
        yield from self._events(final=False)
        if len(self._buffer) > self._max:
            raise ValueError("an upstream SSE event exceeded the size limit")

    def close(self) -> Iterator[SSEEvent]:
        """What is left when the stream ends without a final blank line."""
        yield from self._events(final=True)
        if self._buffer.strip():
            yield self._event(bytes(self._buffer) + b"\n\n")
        self._buffer.clear()

    def _events(self, final: bool) -> Iterator[SSEEvent]:
        start = 0
        while (match := _EVENT_END.search(self._buffer, start)) is not None:
            end = match.end()
            if not final and end == len(self._buffer) and self._buffer[end - 1] == 0x0D:
                break  # the CR may be the first half of a CRLF still to come
            yield self._event(bytes(self._buffer[start:end]))
            start = end
        del self._buffer[:start]

    def _event(self, raw: bytes) -> SSEEvent:
        first, self._started = not self._started, True
        return parse_event(raw, first)


def encode_data(payload: Any) -> bytes:
    return b"data: " + json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode() + b"\n\n"


DONE = b"data: [DONE]\n\n"


def comment(text: str) -> bytes:
    return b": " + text.encode() + b"\n\n"


def encode_event(name: str, payload: Any) -> bytes:
    """A named event (``event:`` line, then ``data:``), as the Responses and Anthropic APIs stream them."""
    return b"event: " + name.encode() + b"\n" + encode_data(payload)
