"""The units the injection guard embeds: the toxicity guard's sentence windows, at the same width.

Both guards then embed the same strings, so where both run on a text, its vectors can be shared.
"""

from __future__ import annotations

from guardproxy.guards.toxicity.windows import ScoringWindow, sentence_windows

WINDOW_CHARS = 200


def text_windows(text: str, limit: int = WINDOW_CHARS) -> list[ScoringWindow]:
    """Every non-blank sentence of ``text`` in windows of at most ``limit`` characters."""
    return sentence_windows(text, limit)
