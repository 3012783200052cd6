"""Claims: the sentences of an answer, each checked against the context on its own.

Sentences are cut on ``.!?`` followed by space and a capital, digit or quote,
and on line breaks. A sentence shorter than ``min_chars`` ("Yes.", "1998.") is
joined to the claim before it (or after it, for the first one), so every
character of the answer belongs to exactly one claim.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_BOUNDARY = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[A-Z0-9])|\s*\n+\s*")


@dataclass(frozen=True, slots=True)
class Claim:
    """``text[start:end]`` of one answer segment."""

    start: int
    end: int


def _sentences(text: str) -> list[tuple[int, int]]:
    spans = []
    position = 0
    for boundary in [*_BOUNDARY.finditer(text), None]:
        end = len(text) if boundary is None else boundary.start()
        piece = text[position:end]
        stripped = piece.strip()
        if stripped:
            offset = position + piece.index(stripped)
            spans.append((offset, offset + len(stripped)))
        if boundary is not None:
            position = boundary.end()
    return spans


def split_claims(text: str, min_chars: int) -> list[Claim]:
    """The claims of ``text``, in order; none for blank text."""
    merged: list[list[int]] = []
    for start, end in _sentences(text):
        if merged and (end - start < min_chars or merged[-1][1] - merged[-1][0] < min_chars):
            merged[-1][1] = end
        else:
            merged.append([start, end])
    return [Claim(start, end) for start, end in merged]
