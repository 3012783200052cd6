"""Sentences: where every guard, and the stream guard, cuts a text into sentences.

A sentence ends at closing punctuation (``.``, ``!``, ``?``, ``。``, with any closing quotes
or brackets after it) followed by whitespace, or at a line break. A period after a title ends
nothing ("Dr. Lee"), and one after an initial or dotted initials only before a capital letter
("a B.S. in Finance", "U.S. and Canadian gigs", but "born in the U.S. He left"): cut there, a
claim falls apart. Punctuation with no space after it ("3.14",
"example.com") ends nothing, except a run of it before a letter, as chats write it
("through....her", "really?!OK"); nor does punctuation at the very end of a streamed text:
the next character may still be on its way. Guards that score sentences join fragments too
short to mean anything ("Ok.") to a neighbour.

Offsets are ``text[start:end]``, end exclusive. ``text_pieces`` cuts a text too long for a
model into pieces at these boundaries (or at whitespace, if a piece would hold none).
"""

from __future__ import annotations

import re

# The end of a sentence: its closing punctuation and quotes, and the whitespace up to the next one.
_SENTENCE_END = re.compile(r"[.!?\u3002][\"'\u201d\u2019)\]]*\s+|\n\s*|[.!?]{2,}(?=[^\W\d_])")
# Before a period: a title, which ends no sentence, or an initial, dotted initials ("U.S", "e.g") or a
# suffix, which end one only before a capital letter.
_ABBREVIATION = re.compile(
    r"(?<![\w.'\u2019])(?:(?P<title>Mr|Mrs|Ms|Dr|Prof|vs)|[A-Za-z]|(?:[A-Za-z]\.)+[A-Za-z]|Jr|Sr|St)\Z")
_LONGEST_ABBREVIATION = 12
# Below spaCy's own limit (``nlp.max_length``, 1,000,000 by default, error E088 past it): a model sees at
# most this much of a guard's input at once, and an abandoned scan stops between pieces.
PIECE_CHARS = 100_000
_UP_TO_LAST_WHITESPACE = re.compile(r".*\s", re.DOTALL)


def completed_sentence_ends(text: str, start: int = 0, stop: int | None = None) -> list[int]:
    """Where each sentence completed in ``text[start:stop]`` ends, with the whitespace after it: the offset
    at which the next one starts. The last sentence counts only once a boundary follows it."""
    ends = []
    for match in _SENTENCE_END.finditer(text, start, len(text) if stop is None else stop):
        if text[match.start()] == ".":
            abbreviation = _ABBREVIATION.search(text, max(0, match.start() - _LONGEST_ABBREVIATION), match.start())
            if abbreviation and (abbreviation["title"] or not text[match.end():match.end() + 1].isupper()):
                continue
        ends.append(match.end())
    return ends


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each non-blank sentence, without the whitespace around it."""
    spans = []
    position = 0
    for end in [*completed_sentence_ends(text), len(text)]:
        start, stop = strip_span(text, position, end)
        if stop > start:
            spans.append((start, stop))
        position = end
    return spans


def text_pieces(text: str, limit: int) -> list[tuple[int, int]]:
    """(start, end) of consecutive pieces of at most ``limit`` characters covering all of ``text``.

    A piece ends after the last sentence in its second half, or else at the last whitespace
    there, or else (one unbroken run of characters) at ``limit``. Something that spans a cut, a
    name or a number written with spaces, is seen in two halves: cuts at sentence ends avoid that.
    """
    if limit < 2:
        raise ValueError(f"a piece holds at least 2 characters, not {limit}")
    pieces = []
    start = 0
    while len(text) - start > limit:
        low, high = start + limit // 2, start + limit
        cut = max(completed_sentence_ends(text, low, high), default=None)
        if cut is None:
            whitespace = _UP_TO_LAST_WHITESPACE.match(text, low, high)
            cut = whitespace.end() if whitespace else high
        pieces.append((start, cut))
        start = cut
    if start < len(text) or not pieces:
        pieces.append((start, len(text)))
    return pieces


def strip_span(text: str, start: int, end: int) -> tuple[int, int]:
    """``(start, end)`` narrowed to leave out the whitespace at either end of ``text[start:end]``."""
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end
