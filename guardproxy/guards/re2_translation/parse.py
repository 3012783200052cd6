"""From Python's parse tree to the translation's tree, with the flags in force resolved into each node."""

from __future__ import annotations

import re
from re import _constants as sre  # type: ignore[attr-defined]  # CPython's own parser, as re.compile uses it
from typing import Any

from guardproxy.guards.re2_translation.charsets import CharSet, category_set, negate, single
from guardproxy.guards.re2_translation.tree import (
    ASCII_IGNORECASE,
    END_OF_TEXT,
    NOT_WORD_BOUNDARY,
    WORD_BOUNDARY,
    Alt,
    At,
    Chars,
    Group,
    Lit,
    Node,
    Rep,
    Seq,
    Unsupported,
)


def from_python(data: Any, flags: int) -> Seq:
    nodes: list[Node] = []
    for op, av in data:
        if op in (sre.LITERAL, sre.NOT_LITERAL, sre.ANY, sre.IN) and flags & re.ASCII and flags & re.IGNORECASE:
            raise Unsupported(ASCII_IGNORECASE)
        if op is sre.LITERAL:
            nodes.append(Lit(av))
        elif op is sre.NOT_LITERAL:
            nodes.append(Chars(negate(single(av))))
        elif op is sre.ANY:
            nodes.append(Chars(negate(()) if flags & re.DOTALL else negate(single(ord("\n")))))
        elif op is sre.IN:
            nodes.append(Chars(_class(av, flags)))
        elif op is sre.BRANCH:
            nodes.append(Alt(tuple(from_python(branch.data, flags) for branch in av[1])))
        elif op is sre.SUBPATTERN:
            _, add, remove, body = av
            inner = (flags | add) & ~remove
            changed = (inner ^ flags) & re.IGNORECASE
            nodes.append(Group(bool(inner & re.IGNORECASE) if changed else None, from_python(body.data, inner)))
        elif op in (sre.MAX_REPEAT, sre.MIN_REPEAT):
            low, high, body = av
            nodes.append(Rep(low, None if high is sre.MAXREPEAT else high, op is sre.MIN_REPEAT,
                             from_python(body.data, flags)))
        elif op is sre.AT:
            nodes.append(At(_assertion(av, flags)))
        else:  # backreferences, lookarounds and the like are refused before translation
            raise Unsupported(f"the construct {op} (it needs backtracking)")
    return tuple(nodes)


def _class(items: Any, flags: int) -> CharSet:
    terms: CharSet = ()
    negated = False
    for op, av in items:
        if op is sre.NEGATE:
            negated = True
        elif op is sre.LITERAL:
            terms += single(av)
        elif op is sre.RANGE:
            terms += single(av[0], av[1])
        elif op is sre.CATEGORY:
            terms += category_set(str(av), ascii_only=bool(flags & re.ASCII))
        else:
            raise Unsupported(f"the class item {op}")
    return negate(terms) if negated else terms


def _assertion(code: Any, flags: int) -> str:
    multiline, ascii_only = flags & re.MULTILINE, flags & re.ASCII
    if code is sre.AT_BEGINNING:
        return "(?m:^)" if multiline else r"\A"
    if code is sre.AT_BEGINNING_STRING:
        return r"\A"
    if code is sre.AT_END:
        return "(?m:$)" if multiline else END_OF_TEXT
    if code is sre.AT_END_STRING:
        return r"\z"
    if code is sre.AT_BOUNDARY:
        return r"\b" if ascii_only else WORD_BOUNDARY
    if code is sre.AT_NON_BOUNDARY:
        return r"\B" if ascii_only else NOT_WORD_BOUNDARY
    raise Unsupported(f"the assertion {code}")
