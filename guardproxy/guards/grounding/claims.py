"""Claims: the sentences of an answer, each checked against the context on its own.

Sentences are those of ``guards.sentences``. A sentence shorter than
``min_chars`` ("Yes.", "1998.") is joined to the claim before it (or after it,
for the first one), so every character of the answer belongs to exactly one claim.
"""

from __future__ import annotations

from dataclasses import dataclass

from guardproxy.guards.sentences import sentence_spans


@dataclass(frozen=True, slots=True)
class Claim:
    """``text[start:end]`` of one answer segment."""

    start: int
    end: int


def split_claims(text: str, min_chars: int) -> list[Claim]:
    """The claims of ``text``, in order; none for blank text."""
    merged: list[list[int]] = []
    for start, end in sentence_spans(text):
        if merged and (end - start < min_chars or merged[-1][1] - merged[-1][0] < min_chars):
            merged[-1][1] = end
        else:
            merged.append([start, end])
    return [Claim(start, end) for start, end in merged]
