"""Rewriting text spans: the one place that turns redact findings into new text."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Redaction:
    start: int
    end: int
    replacement: str


def redact_spans(text: str, redactions: Iterable[Redaction]) -> str:
    """Replace spans in ``text``. Overlapping spans merge into one, which takes
    the replacement of the longest span among them (the first on a tie)."""
    ordered = sorted(redactions, key=lambda r: (r.start, -(r.end - r.start)))
    merged: list[Redaction] = []
    longest: list[int] = []
    for item in ordered:
        if merged and item.start < merged[-1].end:
            last = merged[-1]
            replacement = item.replacement if item.end - item.start > longest[-1] else last.replacement
            longest[-1] = max(longest[-1], item.end - item.start)
            merged[-1] = Redaction(last.start, max(last.end, item.end), replacement)
        else:
            merged.append(item)
            longest.append(item.end - item.start)
    pieces: list[str] = []
    cursor = 0
    for item in merged:
        pieces.append(text[cursor : item.start])
        pieces.append(item.replacement)
        cursor = item.end
    pieces.append(text[cursor:])
    return "".join(pieces)
