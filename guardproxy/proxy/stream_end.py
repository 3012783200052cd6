"""How each API's stream ends, and whether a stream relayed unread reached that end.

A stream is complete when its last event is its API's end, whole (its blank line
came): ``data: [DONE]`` for the choice-based APIs (chat, text completions),
``response.completed``, ``response.incomplete`` or ``response.failed`` for the
Responses API, ``message_stop`` for Anthropic Messages. An ``error`` event (``data: {"error": ...}``
on the choice-based APIs) ends a stream too: the upstream has told the client
itself, so the proxy adds nothing.

The stream guards read every event and know when the end came. The unguarded
relay never parses events (it is the fast path), so ``StreamEnd`` keeps only the
first bytes of the last line that names an event: the last ``event:`` line of a
typed stream (Responses, Messages), the last ``data:`` line of a choice-based one.
Per chunk that is an ``rfind`` and a short slice. A typed stream without any
``event:`` line (an upstream that writes only ``data:``) cannot be judged that way
and counts as complete.

A stream cut inside an event leaves that event unfinished at the client, so the
error event the relay adds starts with a blank line (``AFTER_CUT``): the cut event
is dispatched as it is (an SDK fails to parse it) and the error is read on its own.
"""

from __future__ import annotations

import re

END_EVENTS: dict[str, frozenset[str]] = {
    "choices": frozenset({"[DONE]"}),
    "responses": frozenset({"response.completed", "response.incomplete", "response.failed"}),
    "messages": frozenset({"message_stop"}),
}
ERROR_EVENT = "error"
_ENDS = {family: frozenset(name.encode() for name in names | {ERROR_EVENT}) for family, names in END_EVENTS.items()}
_KEPT = 64  # bytes of a line's value kept: more than any end event's name
_LINE_BREAKS = (10, 13)  # LF, CR: a field's name counts only at the start of a line
_LINE_BREAK = re.compile(rb"[\r\n]")
_ERROR_DATA = re.compile(rb'\{\s*"error"\s*:')
AFTER_CUT = b"\n\n"  # ends whatever line and event a cut left open; a blank line more is ignored


def ends_event(tail: bytes) -> bool:
    """Whether bytes end with a blank line (two line ends: LF, CR or CRLF, mixed)."""
    if tail.endswith(b"\r\n"):
        rest = tail[:-2]
    elif tail.endswith((b"\n", b"\r")):
        rest = tail[:-1]
    else:
        return False
    return rest.endswith((b"\n", b"\r"))


class StreamEnd:
    """Fed every chunk of a relayed SSE stream of one stream family; ``complete`` at its end."""

    __slots__ = ("_data_only", "_ends", "_head", "_name", "_need", "_seen", "_tail", "_typed")

    def __init__(self, family: str) -> None:
        self._typed = family != "choices"
        self._name = b"event:" if self._typed else b"data:"
        self._ends = _ENDS[family]
        self._tail = b"\n" * len(self._name)  # the last bytes before this chunk; the stream starts a line
        self._head = b""  # the first bytes from the value of the last line that names an event
        self._need = 0  # bytes of that line still to come, up to _KEPT
        self._seen = False
        self._data_only = False  # a typed stream with data before any event line

    def feed(self, chunk: bytes) -> None:
        start = self._last_line(chunk)
        if start >= 0:
            self._head = chunk[start : start + _KEPT]
            self._need = _KEPT - len(self._head)
            self._seen = True
        else:
            if self._need:
                more = chunk[: self._need]
                self._head += more
                self._need -= len(more)
            if self._typed and not self._seen and not self._data_only:
                self._data_only = b"data:" in chunk
        size = len(self._name)
        self._tail = chunk[-size:] if len(chunk) >= size else (self._tail + chunk)[-size:]

    def _last_line(self, chunk: bytes) -> int:
        """Where the value of the last line in ``chunk`` that names an event starts, or -1."""
        name, tail = self._name, self._tail
        end = len(chunk)
        while (at := chunk.rfind(name, 0, end)) >= 0:
            if (chunk[at - 1] if at else tail[-1]) in _LINE_BREAKS:
                return at + len(name)
            end = at
        joint = tail + chunk[: len(name) - 1]  # the name split between the last chunk and this one
        end = len(joint)
        while (at := joint.rfind(name, 1, end)) >= 0:
            if joint[at - 1] in _LINE_BREAKS and at + len(name) > len(tail):
                return at + len(name) - len(tail)
            end = at + len(name) - 1
        return -1

    @property
    def complete(self) -> bool:
        """Whether the last event was the API's end (or an error), as far as the bytes tell."""
        if not self._seen:  # a typed stream of data lines only is not judged; one without data is empty
            return self._data_only
        line_end = _LINE_BREAK.search(self._head)
        value = (self._head if line_end is None else self._head[: line_end.start()]).strip()
        ended = value in self._ends or (not self._typed and _ERROR_DATA.match(value) is not None)
        return ended and ends_event(self._tail)
