"""Other mentions of people already found in the same text: the model and the cue phrases often find
a name once and miss it (or its parts) elsewhere, and find one speaker of a dialogue or one member of
a list but not the others.

Every function here takes the people found so far as ``(start, end)`` spans and returns more spans;
none of them finds a name on its own, so a text without one found person gains nothing.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import regex

from guardproxy.guards.pii.recognizers.vocabulary import NOT_A_NAME, ORG_WORD, ROLE_WORD, TIME_WORD

Span = tuple[int, int]

_LIST_MEMBER = r"\p{L}[\p{L}'’-]*"
_NAME_LIST = regex.compile(rf"{_LIST_MEMBER}(?:,[ ]+{_LIST_MEMBER}){{1,}},?[ ]+(?:and|&)[ ]+{_LIST_MEMBER}|"
                           rf"{_LIST_MEMBER}[ ]+(?:and|&)[ ]+{_LIST_MEMBER}")
# "Anna: Where were you?": a label of one or two words at the start of a line, with speech after it.
_SPEAKER = regex.compile(r"(?m)^[ \t>]*(?P<label>\p{Lu}[\p{L}'’-]*(?:[ ]\p{Lu}[\p{L}'’-]*)?)[ \t]*:(?=[ \t]*\S)")
_POSSESSIVE = regex.compile(r"['’]s?$")
_PART = regex.compile(r"\p{L}[\p{L}'’-]{2,}")


def _overlaps(start: int, end: int, spans: Sequence[Span]) -> bool:
    return any(start < e and s < end for s, e in spans)


def list_members(text: str, people: Sequence[Span]) -> Iterator[Span]:
    """The other members of a list that holds a found name ("Usamov and Bowers", "silvana, adam and chad")."""
    for listing in _NAME_LIST.finditer(text):
        if ORG_WORD.search(text, listing.start(), listing.end() + 30):
            continue
        if not any(listing.start() <= s and e <= listing.end() for s, e in people):
            continue
        for member in regex.finditer(_LIST_MEMBER, listing.group()):
            word = member.group()
            start = listing.start() + member.start()
            if word not in ("and", "&") and not TIME_WORD.fullmatch(word) and not any(
                    s <= start < e for s, e in people):
                yield start, start + len(word)


def speakers(text: str, people: Sequence[Span]) -> Iterator[Span]:
    """The speaker labels of a dialogue in which one label is a found name: its labels name people alike."""
    labels = [m.span("label") for m in _SPEAKER.finditer(text)
              if not ROLE_WORD.fullmatch(m.group("label")) and not NOT_A_NAME.fullmatch(m.group("label"))]
    if len(labels) < 2 or not any(_overlaps(start, end, people) for start, end in labels):
        return
    yield from (label for label in labels if not _overlaps(label[0], label[1], people))


def repeats(text: str, people: Sequence[Span], excluded: Sequence[Span]) -> Iterator[Span]:
    """Every other occurrence of a found name and of its words ("... early Vassiliev"), as a whole word
    and in the same case, outside ``excluded`` (addresses: "Davis" the person is not "Davis Street")."""
    words: set[str] = set()
    for start, end in people:
        name = _POSSESSIVE.sub("", text[start:end])
        words.add(name)
        words.update(part for part in _PART.findall(name)
                     if not NOT_A_NAME.fullmatch(part) and not TIME_WORD.fullmatch(part))
    if not words:
        return
    alternatives = "|".join(regex.escape(word) for word in sorted(words, key=len, reverse=True))
    for match in regex.finditer(rf"(?<![\p{{L}}\p{{N}}@./_-])(?:{alternatives})(?![\p{{L}}\p{{N}}@_-]|\.\w)", text):
        if not _overlaps(match.start(), match.end(), [*people, *excluded]):
            yield match.span()
