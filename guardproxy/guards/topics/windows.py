"""Sentence windows: the parts of a long segment that are scored on their own.

A banned request inside a long message is diluted in the whole message's
embedding; scoring each sentence, and each run of ``size`` sentences, catches it.
Sentences are cut on ``.!?`` followed by space, and on blank lines or line breaks.
"""

from __future__ import annotations

import re

# Enough windows for a long message; beyond this, sentences are grouped so the cost stays bounded.
MAX_SENTENCES = 48



def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each non-blank sentence, stripped of surrounding spaces."""
    spans = []
    position = 0
    for piece in re.split(r"(?<=[.!?])\s+|\n+", text):
        start = text.find(piece, position)
        position = start + len(piece)
        stripped = piece.strip()
        if stripped:
            offset = start + piece.index(stripped)
            spans.append((offset, offset + len(stripped)))
    return spans


def sentence_windows(text: str, size: int) -> list[tuple[int, int]]:
    """Spans of each sentence and each run of ``size`` sentences; none for a single sentence or ``size`` 0."""
    sentences = sentence_spans(text)
    if size == 0 or len(sentences) < 2:
        return []
    if len(sentences) > MAX_SENTENCES:
        group = -(-len(sentences) // MAX_SENTENCES)
        sentences = [(sentences[i][0], sentences[min(i + group, len(sentences)) - 1][1])
                     for i in range(0, len(sentences), group)]
    windows = list(sentences)
    for width in range(2, min(size, len(sentences) - 1) + 1):
        windows.extend((sentences[i][0], sentences[i + width - 1][1]) for i in range(len(sentences) - width + 1))
    return windows
