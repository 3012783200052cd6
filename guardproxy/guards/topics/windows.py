"""Sentence windows: the parts of a long segment that are scored on their own.

A banned request inside a long message is diluted in the whole message's
embedding; scoring each sentence, and each run of ``size`` sentences, catches it.
Sentences are cut by ``guards.sentences``. A window is a run of sentence units
(``window_runs``): the semantic method embeds each unit once and composes the
runs from their vectors (``semantic.compose``).
"""

from __future__ import annotations

from guardproxy.guards.sentences import sentence_spans

# Enough windows for a long message; beyond this, sentences are grouped so the cost stays bounded.
MAX_SENTENCES = 48


def sentence_units(text: str) -> list[tuple[int, int]]:
    """The sentences windows are made of: past ``MAX_SENTENCES``, runs of neighbours grouped as one."""
    sentences = sentence_spans(text)
    if len(sentences) <= MAX_SENTENCES:
        return sentences
    group = -(-len(sentences) // MAX_SENTENCES)
    return [(sentences[i][0], sentences[min(i + group, len(sentences)) - 1][1])
            for i in range(0, len(sentences), group)]


def window_runs(units: int, size: int) -> list[tuple[int, int]]:
    """(first, last) unit of each window: every unit, then every run of 2 to ``size`` units (never all of
    them, which is the whole text); none for fewer than two units or ``size`` 0."""
    if size == 0 or units < 2:
        return []
    runs = [(i, i) for i in range(units)]
    for width in range(2, min(size, units - 1) + 1):
        runs.extend((i, i + width - 1) for i in range(units - width + 1))
    return runs

