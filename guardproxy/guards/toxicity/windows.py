"""Where a text is cut into the units the toxicity guard scores.

One toxic sentence in a long polite message must still be caught, so texts are
scored sentence by sentence (``guards.sentences``), never whole: a sentence
longer than the window is cut at whitespace into window-sized pieces, and a
fragment too short to mean anything on its own ("Ok.", "Hi!") is scored
together with its neighbour.
"""

from __future__ import annotations

from dataclasses import dataclass

from guardproxy.guards.sentences import sentence_spans, strip_span, text_pieces

_MIN_UNIT_CHARS = 16


@dataclass(frozen=True, slots=True)
class ScoringWindow:
    """``text[start:end]`` of the segment; end exclusive."""

    start: int
    end: int


def _split_long(text: str, start: int, end: int, limit: int) -> list[ScoringWindow]:
    pieces = [strip_span(text, start + low, start + high) for low, high in text_pieces(text[start:end], limit)]
    return [ScoringWindow(low, high) for low, high in pieces if high > low]


def sentence_windows(text: str, limit: int) -> list[ScoringWindow]:
    """The units to score, in order, covering every non-blank sentence of ``text``."""
    merged: list[tuple[int, int]] = []
    for start, end in sentence_spans(text):
        if merged and (end - start < _MIN_UNIT_CHARS or merged[-1][1] - merged[-1][0] < _MIN_UNIT_CHARS) \
                and end - merged[-1][0] <= limit:
            merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    windows: list[ScoringWindow] = []
    for start, end in merged:
        windows.extend(_split_long(text, start, end, limit))
    return windows
