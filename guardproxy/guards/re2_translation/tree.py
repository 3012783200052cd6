"""The tree a pattern is translated through, and what can be told about its first and last characters.

Python's parse tree (``re._parser``), with the flags in force resolved into each node, plus
the nodes translation adds: marker groups and context characters.
"""

from __future__ import annotations

from dataclasses import dataclass

from guardproxy.guards.re2_translation.charsets import CharSet, Kind, char_kind, charset_kinds


class Unsupported(ValueError):
    """The pattern uses something RE2 cannot match the way Python does; the message says what."""


INNER_BOUNDARY = r"a word boundary (\b or \B) that is not at the start or the end of the pattern"
INNER_DOLLAR = "a '$' that is not at the end of the pattern (Python's also matches before a final newline)"
MIXED_BOUNDARY = (r"a word boundary (\b or \B) next to a part that may or may not be a word character, "
                  "in a form RE2 cannot split")
ASCII_IGNORECASE = "the ASCII flag (?a) with case-insensitive matching"


# The tree: Python's parse tree with flags resolved, plus the marker and context nodes translation adds.
@dataclass(frozen=True, slots=True)
class Lit:
    char: int


@dataclass(frozen=True, slots=True)
class Chars:
    charset: CharSet


@dataclass(frozen=True, slots=True)
class At:
    code: str  # RE2 text of a native assertion, or one of EMULATED


@dataclass(frozen=True, slots=True)
class Group:
    ignore_case: bool | None  # a change of case sensitivity, None for none
    body: Seq


@dataclass(frozen=True, slots=True)
class Alt:
    branches: tuple[Seq, ...]


@dataclass(frozen=True, slots=True)
class Rep:
    low: int
    high: int | None  # None: unbounded
    lazy: bool
    body: Seq


@dataclass(frozen=True, slots=True)
class Mark:
    end: bool  # an empty group where the finding starts (False) or ends (True)


@dataclass(frozen=True, slots=True)
class Raw:
    text: str  # a context character matched beside the finding, as RE2 text


Node = Lit | Chars | At | Group | Alt | Rep | Mark | Raw
Seq = tuple[Node, ...]
WORD_BOUNDARY, NOT_WORD_BOUNDARY, END_OF_TEXT = "WB", "NWB", "EOL"
EMULATED = frozenset({WORD_BOUNDARY, NOT_WORD_BOUNDARY, END_OF_TEXT})
NEVER: Seq = (Chars(()),)


def edge_kinds(seq: Seq, last: bool) -> tuple[frozenset[Kind], bool]:
    """The kinds (word "w", non-word "n") the first (or last) character matched by ``seq``
    may have, and whether ``seq`` may match nothing. An end mark ends the finding."""
    kinds: set[Kind] = set()
    for node in reversed(seq) if last else seq:
        if isinstance(node, Mark) and node.end:
            return frozenset(kinds), True
        found, may_be_empty = _node_edge(node, last)
        kinds |= found
        if not may_be_empty:
            return frozenset(kinds), False
    return frozenset(kinds), True


def _node_edge(node: Node, last: bool) -> tuple[frozenset[Kind], bool]:
    if isinstance(node, Lit):
        return frozenset({char_kind(node.char)}), False
    if isinstance(node, Chars):
        return charset_kinds(node.charset), False
    if isinstance(node, Group):
        return edge_kinds(node.body, last)
    if isinstance(node, Alt):
        edges = [edge_kinds(branch, last) for branch in node.branches]
        return frozenset().union(*(kinds for kinds, _ in edges)), any(empty for _, empty in edges)
    if isinstance(node, Rep):
        if node.high == 0:
            return frozenset(), True
        kinds, empty = edge_kinds(node.body, last)
        return kinds, empty or node.low == 0
    return frozenset(), True  # assertions and markers match no character


def nullable(seq: Seq) -> bool:
    """Whether ``seq`` may match nothing."""
    return edge_kinds(seq, last=False)[1]


def emulated_at_edge(seq: Seq, last: bool) -> bool:
    """Whether an emulated assertion sits at the start (or end) of some way through ``seq``."""
    for node in reversed(seq) if last else seq:
        if isinstance(node, At):
            if node.code in EMULATED:
                return True
            continue
        if isinstance(node, Alt):
            return any(emulated_at_edge(branch, last) for branch in node.branches)
        if isinstance(node, Group):
            return emulated_at_edge(node.body, last)
        return False
    return False
