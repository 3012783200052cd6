r"""A policy pattern, written in Python's syntax, rewritten for RE2 with Python's meaning.

Policy authors write Python ``re`` syntax; RE2 reads a similar syntax that means
something else in places. So the pattern is parsed by Python's own parser and the tree
is written out again for RE2, such that RE2 finds the spans Python would find:

- ``\w``, ``\d``, ``\s`` and their negations are the Unicode classes Python uses (RE2's
  are ASCII unless the pattern sets ``(?a)``); ``\Z`` is RE2's ``\z``; ``.``, ``^`` and
  ``$`` follow the DOTALL and MULTILINE flags in force where they appear;
- groups become non-capturing: findings are spans, nothing reads groups;
- case-insensitive matching is Unicode simple case folding in both. They differ on one
  character (checked by the tests on every cased one): Python also lets a pattern's dotless
  ``ı`` match ``I``.

Two of Python's assertions have no RE2 equivalent: the Unicode word boundary ``\b``/``\B``
(RE2 knows only ASCII word characters there) and ``$`` without MULTILINE (Python's also
matches before a final newline). Where they start or end the pattern, which is where
they almost always are, they are emulated exactly: the character on the far side is
matched as well (or the end of the text), and empty marker groups ``()`` tell where the
finding itself starts and ends. A boundary at the start is checked against the character
before the finding, so every match then begins one character early (``Re2Translation.context``).
Anywhere else, and where a boundary's side cannot be told apart without backtracking,
translation raises ``Unsupported``, naming what it cannot do: the caller turns that into a
policy error. Nothing here runs a pattern; ``regex_safety`` does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from re import _parser  # type: ignore[attr-defined]  # CPython's own parser, as re.compile uses it

from guardproxy.guards.re2_translation.charsets import NOT_WORD_CLASS, WORD_CLASS
from guardproxy.guards.re2_translation.edges import close_right, open_left, refuse_inner
from guardproxy.guards.re2_translation.emit import Emitter
from guardproxy.guards.re2_translation.parse import from_python
from guardproxy.guards.re2_translation.tree import NEVER, Alt, Mark, Raw, Unsupported, emulated_at_edge

__all__ = ["Re2Translation", "Unsupported", "translate"]


@dataclass(frozen=True, slots=True)
class Re2Translation:
    """The RE2 pattern, and how to read a finding out of a match.

    ``starts``/``ends``: the marker groups, of which exactly one of each takes part in a
    match; when empty, the finding is the whole match. ``context``: a match begins with
    the character before the finding, so a search that follows a finding ending at ``e``
    resumes one character before ``e``, with ``resumed``."""

    pattern: str
    starts: tuple[int, ...] = ()
    ends: tuple[int, ...] = ()
    context: bool = False
    resumed: str = ""  # with context: the pattern for searches after a finding (no \A alternative)


def translate(pattern: str, flags: int = 0) -> Re2Translation:
    """Raises ``re.error`` for what Python cannot parse and ``Unsupported`` for what RE2 cannot do."""
    parsed = _parser.parse(pattern, flags)
    global_flags: int = parsed.state.flags
    tree = from_python(parsed.data, global_flags)
    context = emulated_at_edge(tree, last=False)
    if emulated_at_edge(tree, last=True):
        tree = close_right(tree, None) or NEVER
    prefix = "(?i)" if global_flags & re.IGNORECASE else ""
    if not context:
        refuse_inner(tree)
        emitter = Emitter()
        body = emitter.seq(tree)
        return Re2Translation(prefix + body, (), tuple(emitter.ends))
    opened = {before: open_left(tree, before) for before in ("n", "w")}
    refuse_inner(tuple(node for way in opened.values() if way is not None for node in way))
    texts = []
    for at_start in (True, False):  # a search from the start of the text, and one resumed after a finding
        leads = {"n": rf"(?:\A|{NOT_WORD_CLASS})" if at_start else NOT_WORD_CLASS, "w": WORD_CLASS}
        alternatives = tuple((Raw(leads[before]), Mark(end=False), *way) for before, way in opened.items()
                             if way is not None)
        emitter = Emitter()
        texts.append(prefix + emitter.seq((Alt(alternatives),) if alternatives else NEVER))
    return Re2Translation(texts[0], tuple(emitter.starts), tuple(emitter.ends), True, texts[1])
