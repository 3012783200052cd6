r"""Sets of characters, as Python's classes mean them, written as RE2 classes.

Python's ``\w`` is ``[\p{L}\p{N}_]`` and its ``\d`` is ``\p{Nd}`` (checked against every
assigned code point by the tests); its ``\s`` is a fixed list. RE2 has no single class
for "not a word character" to put inside brackets, and no set difference, so a set is
kept as a union of terms, each "the characters of a base that are in none of these
items", which RE2 can write: ``[^\P{L}x]`` is the letters other than ``x``.

Word boundaries need to know whether a character is a word character, so a set can also
be cut into its word and non-word parts (``restrict_charset``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["w", "n"]  # a word character (Python's \w) or not
Ranges = tuple[tuple[int, int], ...]
Item = str | Ranges  # a Unicode general category ("L", "N", "Nd") or code point ranges
ANY = "any"
MAX_CHAR = 0x10FFFF
_SMALL = 1024  # ranges up to this many characters are sorted into word and non-word one by one
_W: frozenset[Kind] = frozenset({"w"})
_N: frozenset[Kind] = frozenset({"n"})
_BOTH: frozenset[Kind] = _W | _N

WORD_CLASS = r"[\p{L}\p{N}_]"
NOT_WORD_CLASS = r"[^\p{L}\p{N}_]"
NEVER_CLASS = r"[^\x{0}-\x{10ffff}]"
_UNDERSCORE: Ranges = ((0x5F, 0x5F),)
_WORD: tuple[Item, ...] = ("L", "N", _UNDERSCORE)
_SPACE: Ranges = ((0x9, 0xD), (0x1C, 0x20), (0x85, 0x85), (0xA0, 0xA0), (0x1680, 0x1680), (0x2000, 0x200A),
                  (0x2028, 0x2029), (0x202F, 0x202F), (0x205F, 0x205F), (0x3000, 0x3000))
_ASCII_DIGIT: Ranges = ((0x30, 0x39),)
_ASCII_WORD: Ranges = ((0x30, 0x39), (0x41, 0x5A), (0x5F, 0x5F), (0x61, 0x7A))
_ASCII_SPACE: Ranges = ((0x9, 0xD), (0x20, 0x20))


@dataclass(frozen=True, slots=True)
class Term:
    """The characters of ``base`` (``ANY``: every character) that are in none of ``minus``."""

    base: Item
    minus: tuple[Item, ...] = ()


CharSet = tuple[Term, ...]  # the union of its terms; () matches nothing


def single(low: int, high: int | None = None) -> CharSet:
    return (Term(((low, low if high is None else high),)),)


def category_set(name: str, ascii_only: bool) -> CharSet:
    r"""``\d``, ``\w``, ``\s`` and their negations, by the name of Python's category code."""
    negated = "_NOT_" in name
    kind = name.rsplit("_", 1)[-1]
    if ascii_only:
        items: tuple[Item, ...] = ({"DIGIT": _ASCII_DIGIT, "WORD": _ASCII_WORD, "SPACE": _ASCII_SPACE}[kind],)
    else:
        items = {"DIGIT": ("Nd",), "WORD": _WORD, "SPACE": (_SPACE,)}[kind]
    return (Term(ANY, items),) if negated else tuple(Term(item) for item in items)


def negate(charset: CharSet) -> CharSet:
    if any(term.base == ANY and not term.minus for term in charset):
        return ()
    plain = tuple(term.base for term in charset if not term.minus)
    excluded = [term for term in charset if term.minus]
    if not excluded:
        return (Term(ANY, plain),)
    # not((any - M1) | (any - M2) | plain) = (M1 & M2) - plain; classes only exclude from ANY.
    assert all(term.base == ANY for term in excluded)
    terms = [Term(item) for item in excluded[0].minus]
    for term in excluded[1:]:
        terms = [met for t in terms for item in term.minus if (met := _meet(t, item)) is not None]
    return tuple(Term(t.base, _items(*t.minus, *plain)) for t in terms)


def _meet(term: Term, item: Item) -> Term | None:
    base = term.base
    if isinstance(base, str) and isinstance(item, str):
        if base == item or {base, item} == {"N", "Nd"}:
            return Term("Nd" if "Nd" in (base, item) else base, term.minus)
        return None  # L, N and Nd do not share characters, but for Nd in N
    if isinstance(base, str):
        return Term(base, _items(*term.minus, _complement(item)))  # type: ignore[arg-type]
    if isinstance(item, str):
        return Term(item, _items(*term.minus, _complement(base)))
    met = _intersect(base, item)
    return Term(met, term.minus) if met else None


def char_kind(char: int) -> Kind:
    return "w" if char == 0x5F or chr(char).isalnum() else "n"


def charset_kinds(charset: CharSet) -> frozenset[Kind]:
    """The kinds its characters may have (both when that is not cheap to tell)."""
    kinds: set[Kind] = set()
    for term in charset:
        kinds |= _term_kinds(term)
    return frozenset(kinds)


def _term_kinds(term: Term) -> frozenset[Kind]:
    base = term.base
    if base == ANY:
        return _N if all(item in term.minus for item in _WORD) else _BOTH
    if isinstance(base, str):
        return _W
    if _size(base) <= _SMALL:
        return frozenset(char_kind(c) for low, high in base for c in range(low, high + 1))
    return _BOTH


def restrict_charset(charset: CharSet, kind: Kind) -> CharSet | None:
    """The characters of ``charset`` of ``kind``; None if there are none."""
    kinds = charset_kinds(charset)
    if kind not in kinds:
        return None
    if kinds == {kind}:
        return charset
    return tuple(part for term in charset for part in _restrict_term(term, kind)) or None


def _restrict_term(term: Term, kind: Kind) -> CharSet:
    kinds = _term_kinds(term)
    if kind not in kinds:
        return ()
    if kinds == {kind}:
        return (term,)
    base, minus = term.base, term.minus
    if not isinstance(base, str) and _size(base) <= _SMALL:
        chars = [c for low, high in base for c in range(low, high + 1) if char_kind(c) == kind]
        return (Term(_normalize([(c, c) for c in chars]), minus),)
    if kind == "n":
        return (Term(base, _items(*minus, *_WORD)),)
    if base == ANY:
        return tuple(Term(item, minus) for item in _WORD)
    assert not isinstance(base, str)
    outside = _complement(base)
    parts = [Term("L", _items(*minus, outside)), Term("N", _items(*minus, outside))]
    underscore = _intersect(base, _UNDERSCORE)
    return (*parts, Term(underscore, minus)) if underscore else tuple(parts)


def _items(*items: Item) -> tuple[Item, ...]:
    return tuple(item for item in items if item)


def _size(ranges: Ranges) -> int:
    return sum(high - low + 1 for low, high in ranges)


def _normalize(ranges: list[tuple[int, int]]) -> Ranges:
    merged: list[tuple[int, int]] = []
    for low, high in sorted(ranges):
        if merged and low <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(high, merged[-1][1]))
        else:
            merged.append((low, high))
    return tuple(merged)


def _complement(ranges: Ranges) -> Ranges:
    gaps, next_char = [], 0
    for low, high in _normalize(list(ranges)):
        if low > next_char:
            gaps.append((next_char, low - 1))
        next_char = high + 1
    if next_char <= MAX_CHAR:
        gaps.append((next_char, MAX_CHAR))
    return tuple(gaps)


def _intersect(a: Ranges, b: Ranges) -> Ranges:
    return _normalize([(max(la, lb), min(ha, hb)) for la, ha in a for lb, hb in b if max(la, lb) <= min(ha, hb)])


def _code(char: int) -> str:
    return rf"\x{{{char:x}}}"


def emit_literal(char: int) -> str:
    return chr(char) if chr(char).isascii() and chr(char).isalnum() else _code(char)


def _item(item: Item) -> str:
    if isinstance(item, str):
        return rf"\p{{{item}}}"
    return "".join(_code(low) if low == high else f"{_code(low)}-{_code(high)}" for low, high in item)


def _term(term: Term) -> str:
    base, minus = term.base, "".join(_item(item) for item in term.minus)
    if base == ANY:
        return f"[^{minus}]" if minus else "(?s:.)"
    if isinstance(base, str):
        return f"[^\\P{{{base}}}{minus}]" if minus else _item(base)
    if not minus:
        return f"[{_item(base)}]"
    return f"[^{_item(_complement(base))}{minus}]"


def emit_charset(charset: CharSet) -> str:
    if any(term.base == ANY and not term.minus for term in charset):
        return "(?s:.)"
    plain = [term.base for term in charset if not term.minus]
    pieces = [_term(term) for term in charset if term.minus]
    if len(plain) == 1 and plain[0] and not isinstance(plain[0], str) and plain[0] == ((plain[0][0][0],) * 2,):
        pieces.insert(0, emit_literal(plain[0][0][0]))
    elif plain:
        pieces.insert(0, "[" + "".join(_item(item) for item in plain) + "]")
    if not pieces:
        return NEVER_CLASS
    return pieces[0] if len(pieces) == 1 else "(?:" + "|".join(pieces) + ")"
