"""What the metrics need from a response body as it leaves: when the first
content of a streamed answer went out, and the token usage the upstream reported.

Both are read from the bytes sent to the client, with the patterns the dialect
declares (``Dialect.usage_pattern``, ``Dialect.content_pattern``), so they need
nothing from the code that produced them. The cost is one regex search per chunk
for each: no event is decoded and no JSON parsed. A JSON key can only appear
unescaped outside strings, so text inside an answer never matches either search.
"""

from __future__ import annotations

import re
import time

from guardproxy.proxy.dialects import Dialect

_CARRY = 48  # bytes kept from the previous chunk, so a key split between two chunks is still found
_KEYS: dict[int, tuple[dict[bytes, str], tuple[bytes, ...]]] = {}  # per dialect: directions, quoted keys
_MODEL = re.compile(rb'"model"\s*:\s*"([^"\\]{1,128})"')


class ResponseWatch:
    """Fed the response's start and body messages; keeps the first-content time and usage."""

    __slots__ = ("_content", "_content_tail", "_directions", "_keys", "_scan_usage", "_seek_content", "_seek_model",
                 "_tail", "_usage", "first_content", "response_model", "usage")

    def __init__(self, dialect: Dialect, model: bool = True) -> None:
        """``model``: look for the answer's model too (only traces report it)."""
        self._content = dialect.content_pattern
        self._usage = dialect.usage_pattern
        known = _KEYS.get(id(dialect))
        if known is None:
            directions = {key.encode(): direction for key, direction in dialect.usage_fields.items()}
            known = _KEYS[id(dialect)] = (directions, tuple(b'"' + key + b'"' for key in directions))
        self._directions, self._keys = known
        self._seek_content = False
        self._content_tail = b""
        self._scan_usage = False
        self._tail = b""
        self.first_content: float | None = None
        self.usage: dict[str, int] = {}
        self.response_model: str | None = None
        self._seek_model = model

    def start(self, headers: list[tuple[bytes, bytes]]) -> None:
        """``headers``: the reply's, whose names are in lower case as ASGI has them."""
        content_type = encoding = b""
        for name, value in headers:
            if name == b"content-type":
                content_type = value
            elif name == b"content-encoding":
                encoding = value.lower()
        plain = encoding in (b"", b"identity")
        if self._content is not None and content_type.startswith(b"text/event-stream"):
            # A compressed stream cannot be read here: its first byte stands in for its first content.
            self._seek_content = plain
            self.first_content = None if plain else -1.0
        self._scan_usage = plain

    def body(self, data: bytes) -> None:
        if not data:
            return
        if self.first_content == -1.0:
            self.first_content = time.perf_counter()
        elif self._seek_content:
            window = self._content_tail + data
            if self._content is not None and self._content.search(window):
                self.first_content = time.perf_counter()
                self._seek_content = False
            else:
                self._content_tail = window[-_CARRY:]
        if self._scan_usage:
            window = self._tail + data
            first = -1
            for key in self._keys:  # a literal search is far cheaper than the regex on every quote
                found = window.find(key)
                if found >= 0 and (first < 0 or found < first):
                    first = found
            for match in (self._usage.finditer(window, first) if first >= 0 else ()):
                # The last report wins: some servers repeat cumulative usage in every chunk.
                self.usage[self._directions[match.group(1)]] = int(match.group(2))
            if self._seek_model:
                model = _MODEL.search(window)
                if model is not None:
                    self.response_model = model.group(1).decode("utf-8", "replace")
                    self._seek_model = False
            self._tail = window[-_CARRY:]
