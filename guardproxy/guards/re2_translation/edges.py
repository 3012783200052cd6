r"""Python's ``\b``, ``\B`` and ``$`` where a pattern starts or ends, matched exactly with RE2.

RE2's ``\b`` knows only ASCII word characters and its ``$`` only the very end, and it has no
lookaround to check the character on the far side. So that character is matched as well:

- at the end, each way the pattern can end gets an end marker ``()``, then the character (or the
  end of the text) the assertion requires after a last character of that kind. Where the last
  character may be of either kind, that character is split into its word and non-word parts,
  each with its own follower, so the choices are still tried in Python's order;
- at the start, the character before the finding is matched first: the pattern becomes one
  alternative per kind of that character (the start of the text counts as non-word), each
  with its first character restricted to what the boundary allows, after a start marker.

Rewrites keep Python's order of choices: ``(A|B)C`` is ``AC|BC`` and ``X{m,n}`` is ``X X{m-1,n-1}``
(never the other way round). What cannot be rewritten so raises ``Unsupported``.
"""

from __future__ import annotations

from guardproxy.guards.re2_translation.charsets import (
    NEVER_CLASS,
    NOT_WORD_CLASS,
    WORD_CLASS,
    Kind,
    char_kind,
    restrict_charset,
)
from guardproxy.guards.re2_translation.tree import (
    EMULATED,
    END_OF_TEXT,
    INNER_BOUNDARY,
    INNER_DOLLAR,
    MIXED_BOUNDARY,
    WORD_BOUNDARY,
    Alt,
    At,
    Chars,
    Group,
    Lit,
    Mark,
    Node,
    Raw,
    Rep,
    Seq,
    Unsupported,
    edge_kinds,
    emulated_at_edge,
    nullable,
)

# The end: each way the pattern can end gets an end mark, followed by the character (or the end of
# the text) a trailing \b, \B or $ requires. A finding's end is then its mark, not the match's end.

def close_right(seq: Seq, before: frozenset[Kind] | None) -> Seq | None:
    """``before``: the kinds the character before ``seq`` may have on this way, None if unknown.
    None is returned for a way that can never match."""
    body = list(seq)
    trailing: list[At] = []
    while body and isinstance(body[-1], At):
        trailing.insert(0, body.pop())  # type: ignore[arg-type]
    conditions = tuple(a.code for a in trailing if a.code in EMULATED)
    natives = tuple(a for a in trailing if a.code not in EMULATED)
    rest = tuple(body)
    if conditions:
        return _close_with(rest, natives, conditions, before)
    if trailing or not rest or not isinstance(rest[-1], Alt | Group) or not emulated_at_edge(rest[-1:], last=True):
        return (*seq, Mark(end=True))
    prefix, last = rest[:-1], rest[-1]
    kinds, nullable = edge_kinds(prefix, last=True)
    inner_before = (kinds | before if before is not None else None) if nullable else kinds
    if isinstance(last, Group):
        inner = close_right(last.body, inner_before)
        return None if inner is None else (*prefix, Group(last.ignore_case, inner))
    assert isinstance(last, Alt)
    branches = tuple(b for b in (close_right(br, inner_before) for br in last.branches) if b is not None)
    return (*prefix, Alt(branches)) if branches else None


def _close_with(body: Seq, natives: Seq, conditions: tuple[str, ...], before: frozenset[Kind] | None) -> Seq | None:
    if set(conditions) == {END_OF_TEXT}:  # the last character's kind does not matter
        return (*body, *natives, Mark(end=True), Raw(_suffix(conditions, "n") or NEVER_CLASS))
    kinds, nullable = edge_kinds(body, last=True)
    if nullable:
        if before is None:
            raise Unsupported(MIXED_BOUNDARY)
        kinds |= before
    if len(kinds) <= 1:
        kind: Kind = next(iter(kinds), "n")
        suffix = _suffix(conditions, kind)
        return None if suffix is None else (*body, *natives, Mark(end=True), Raw(suffix))
    if nullable:
        raise Unsupported(MIXED_BOUNDARY)
    return _split_last(body, natives, conditions)


def _split_last(body: Seq, natives: Seq, conditions: tuple[str, ...]) -> Seq | None:
    """Split the last character of ``body`` into its word and non-word characters, each
    followed by what the conditions require after a character of that kind."""
    prefix, last = body[:-1], body[-1]
    if isinstance(last, Lit | Chars):
        split = _split_char(last, natives, conditions)
        return None if split is None else (*prefix, split)
    if isinstance(last, Rep) and _one_char(last.body) and last.low >= 1:
        split = _split_char(last.body[0], natives, conditions)
        more = _fewer(last)
        return None if split is None else (*prefix, *more, split)
    if isinstance(last, Group) and not nullable(last.body):
        inner = _close_with(last.body, natives, conditions, None)
        return None if inner is None else (*prefix, Group(last.ignore_case, inner))
    if isinstance(last, Alt) and not any(nullable(branch) for branch in last.branches):
        branches = tuple(b for b in (_close_with(br, natives, conditions, None) for br in last.branches)
                         if b is not None)
        return (*prefix, Alt(branches)) if branches else None
    raise Unsupported(MIXED_BOUNDARY)


def _split_char(node: Node, natives: Seq, conditions: tuple[str, ...]) -> Alt | None:
    branches = []
    for kind in ("w", "n"):
        part, suffix = _restrict_char(node, kind), _suffix(conditions, kind)
        if part is not None and suffix is not None:
            branches.append((part, *natives, Mark(end=True), Raw(suffix)))
    return Alt(tuple(branches)) if branches else None


_MEET = {("w", "w"): "w", ("n", "n"): "n", ("n", "nl"): "nl", ("nl", "n"): "nl", ("nl", "nl"): "nl"}
_NEXT = {"any": "(?s:.)", "w": WORD_CLASS, "n": NOT_WORD_CLASS, "nl": r"\n"}


def _suffix(conditions: tuple[str, ...], last: Kind) -> str | None:
    """What must follow a finding whose last character is of kind ``last``: the end of the
    text, or a character (then maybe the end). None if nothing can."""
    end_ok, following, then_end = True, "any", False
    for condition in conditions:
        if condition == END_OF_TEXT:
            wanted, then_end = "nl", True
        else:
            boundary = condition == WORD_BOUNDARY
            end_ok = end_ok and (last == "w") == boundary  # past the end counts as a non-word character
            wanted = ("n" if last == "w" else "w") if boundary else last
        following = wanted if following == "any" else _MEET.get((following, wanted), "none")
    options = [r"\z"] if end_ok else []
    if following != "none":
        options.append(_NEXT[following] + (r"\z" if then_end else ""))
    if not options:
        return None
    return options[0] if len(options) == 1 else f"(?:{'|'.join(options)})"


# The start: with a leading \b or \B, the character before the finding is matched first, and the
# pattern is specialised for each kind it may have (the start of the text counts as non-word).

def open_left(seq: Seq, before: Kind) -> Seq | None:
    body = list(seq)
    leading: list[At] = []
    while body and isinstance(body[0], At):
        leading.append(body.pop(0))  # type: ignore[arg-type]
    conditions = [a.code for a in leading if a.code in EMULATED]
    natives = tuple(a for a in leading if a.code not in EMULATED)
    rest = tuple(body)
    if conditions:
        if END_OF_TEXT in conditions:
            raise Unsupported(INNER_DOLLAR)
        wanted = {"w", "n"}
        for condition in conditions:
            wanted &= {_other(before)} if condition == WORD_BOUNDARY else {before}
        if not wanted:
            return None
        restricted = _restrict_first(rest, wanted.pop())  # type: ignore[arg-type]
        return None if restricted is None else (*natives, *restricted)
    if not rest or not isinstance(rest[0], Alt | Group) or not emulated_at_edge(rest[:1], last=False):
        return seq
    head, tail = rest[0], rest[1:]
    if isinstance(head, Group):
        if head.ignore_case is None:
            opened = open_left((*head.body, *tail), before)
            return None if opened is None else (*natives, *opened)
        if nullable(head.body):
            raise Unsupported(MIXED_BOUNDARY)
        inner = open_left(head.body, before)
        return None if inner is None else (*natives, Group(head.ignore_case, inner), *tail)
    assert isinstance(head, Alt)
    spread = any(nullable(branch) for branch in head.branches)  # (A|B)C is AC|BC, choices in the same order
    options = [open_left((*branch, *tail) if spread else branch, before) for branch in head.branches]
    kept = tuple(option for option in options if option is not None)
    return (*natives, Alt(kept), *(() if spread else tail)) if kept else None


def _restrict_first(seq: Seq, kind: Kind) -> Seq | None:
    """``seq`` matching only where its first character is of ``kind``; None if it never can."""
    if not seq or isinstance(seq[0], Mark | Raw):
        raise Unsupported(MIXED_BOUNDARY)  # the finding may be empty here: the boundary would look past it
    head, rest = seq[0], seq[1:]
    if isinstance(head, At):
        if head.code in EMULATED:
            raise Unsupported(INNER_BOUNDARY)
        restricted = _restrict_first(rest, kind)
        return None if restricted is None else (head, *restricted)
    if isinstance(head, Lit | Chars):
        part = _restrict_char(head, kind)
        return None if part is None else (part, *rest)
    if isinstance(head, Group):
        if nullable(head.body):
            if head.ignore_case is not None:
                raise Unsupported(MIXED_BOUNDARY)
            return _restrict_first((*head.body, *rest), kind)
        inner = _restrict_first(head.body, kind)
        return None if inner is None else (Group(head.ignore_case, inner), *rest)
    if isinstance(head, Alt):
        spread = any(nullable(branch) for branch in head.branches)
        options = [_restrict_first((*branch, *rest) if spread else branch, kind) for branch in head.branches]
        kept = tuple(option for option in options if option is not None)
        return (Alt(kept), *(() if spread else rest)) if kept else None
    assert isinstance(head, Rep)
    if head.high == 0:
        return _restrict_first(rest, kind)
    if head.low == 0:
        once = _restrict_first((Rep(1, head.high, head.lazy, head.body), *rest), kind)
        skip = _restrict_first(rest, kind)
        ways = [way for way in ((skip, once) if head.lazy else (once, skip)) if way is not None]
        if len(ways) <= 1:
            return ways[0] if ways else None
        return (Alt(tuple(ways)),)
    if nullable(head.body):
        raise Unsupported(MIXED_BOUNDARY)
    first = _restrict_first(head.body, kind)  # X{m,n} is X X{m-1,n-1}, choices in the same order
    return None if first is None else (Group(None, first), *_fewer(head), *rest)


def _restrict_char(node: Node, kind: Kind) -> Lit | Chars | None:
    if isinstance(node, Lit):
        return node if char_kind(node.char) == kind else None
    assert isinstance(node, Chars)
    restricted = restrict_charset(node.charset, kind)
    return None if restricted is None else Chars(restricted)


def _one_char(seq: Seq) -> bool:
    return len(seq) == 1 and isinstance(seq[0], Lit | Chars)


def _fewer(rep: Rep) -> Seq:
    """``rep`` with one repetition less (nothing if that leaves none)."""
    high = None if rep.high is None else rep.high - 1
    return () if high == 0 else (Rep(rep.low - 1, high, rep.lazy, rep.body),)


def _other(kind: Kind) -> Kind:
    return "n" if kind == "w" else "w"


def refuse_inner(seq: Seq) -> None:
    for node in seq:
        if isinstance(node, At) and node.code in EMULATED:
            raise Unsupported(INNER_DOLLAR if node.code == END_OF_TEXT else INNER_BOUNDARY)
        if isinstance(node, Group | Rep):
            refuse_inner(node.body)
        elif isinstance(node, Alt):
            for branch in node.branches:
                refuse_inner(branch)
