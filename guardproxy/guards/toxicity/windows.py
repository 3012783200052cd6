"""Where a text is cut into the units the toxicity guard scores.

One toxic sentence in a long polite message must still be caught, so texts are
scored sentence by sentence, never whole: a sentence longer than the window is
cut at whitespace into window-sized pieces, and a fragment too short to mean
anything on its own ("Ok.", "Hi!") is scored together with its neighbour.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# A sentence runs to its closing punctuation (and any quotes after it) or a line break.
_SENTENCE = re.compile(r"[^.!?\n]*(?:[.!?]+[\"')\]]*|\n|$)")
_MIN_UNIT_CHARS = 16


@dataclass(frozen=True, slots=True)
class ScoringWindow:
    """``text[start:end]`` of the segment; end exclusive."""

    start: int
    end: int


def _stripped(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _split_long(text: str, start: int, end: int, limit: int) -> list[ScoringWindow]:
    pieces = []
    while end - start > limit:
        cut = text.rfind(" ", start + limit // 2, start + limit)
        cut = cut if cut > start else start + limit
        piece_start, piece_end = _stripped(text, start, cut)
        if piece_end > piece_start:
            pieces.append(ScoringWindow(piece_start, piece_end))
        start = cut
    start, end = _stripped(text, start, end)
    if end > start:
        pieces.append(ScoringWindow(start, end))
    return pieces


def sentence_windows(text: str, limit: int) -> list[ScoringWindow]:
    """The units to score, in order, covering every non-blank sentence of ``text``."""
    sentences = []
    for match in _SENTENCE.finditer(text):
        start, end = _stripped(text, match.start(), match.end())
        if end > start:
            sentences.append((start, end))
    merged: list[tuple[int, int]] = []
    for start, end in sentences:
        if merged and (end - start < _MIN_UNIT_CHARS or merged[-1][1] - merged[-1][0] < _MIN_UNIT_CHARS) \
                and end - merged[-1][0] <= limit:
            merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    windows: list[ScoringWindow] = []
    for start, end in merged:
        windows.extend(_split_long(text, start, end, limit))
    return windows
