r"""Regular expressions from policies: linear time by default, backtracking only when asked.

Policy patterns (keywords ``patterns``, PII ``patterns``, and any guard that takes
patterns from a policy) run on text the client controls. Python's backtracking engine
takes exponential time on a pattern like ``(a+)+$`` against ``aaaa…a!``: one request
could hold the event loop (where keywords run) or a guard thread for hours. So a pattern
is compiled with RE2, which matches in time linear in the text, rewritten so that RE2
finds what Python would (``re2_syntax``).

A pattern that needs backtracking (a backreference, a lookaround, an atomic group, a
possessive quantifier, a conditional group) is refused with a message naming the feature,
unless its policy entry says ``engine: python``. Such a pattern runs in the ``regex`` module
with the GIL released while it matches (``concurrent=True``) and a timeout on each search;
past it the search raises ``PatternTimeout``, which the engine treats as any guard error
(``on_error``). The ``regex`` module counts that timeout in the process's CPU time (C's
``clock()``, all threads together), so a busy process reaches it sooner than the wall clock
and a starved one later. A guard holding such a pattern must run in the guard pool
(``kind = "cpu"``), never on the event loop; searches stop early once the engine abandons the scan.

Both engines yield the spans ``re.finditer`` would, leaving out empty matches (an empty
match finds nothing). Patterns are Python ``re`` syntax with either engine.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from re import _constants as sre  # type: ignore[attr-defined]  # CPython's own parser, as re.compile uses it
from re import _parser  # type: ignore[attr-defined]
from typing import Any, Literal, Protocol

import re2
import regex
from re2 import _re2

from guardproxy.guards.abandonment import raise_if_abandoned
from guardproxy.guards.re2_translation import Re2Translation, Unsupported, translate

RegexEngine = Literal["re2", "python"]
DEFAULT_TIMEOUT_MS = 250

_REGEX_FLAGS = {re.IGNORECASE: regex.IGNORECASE, re.MULTILINE: regex.MULTILINE, re.DOTALL: regex.DOTALL,
                re.VERBOSE: regex.VERBOSE, re.ASCII: regex.ASCII, re.UNICODE: regex.UNICODE}
_CONTINUATION = bytes(range(0x80, 0xC0))  # UTF-8 bytes that do not start a character
_UNANCHORED = _re2.RE2.Anchor.UNANCHORED


class PatternTimeout(TimeoutError):
    """An ``engine: python`` pattern ran past its timeout on one text."""


class PolicyRegex(Protocol):
    """A compiled policy pattern: ``spans(text)`` yields the (start, end) character
    offsets of its non-empty matches, left to right, as ``re.finditer`` finds them."""

    @property
    def pattern(self) -> str: ...

    @property
    def engine(self) -> RegexEngine: ...

    def spans(self, text: str) -> Iterator[tuple[int, int]]: ...


def compile_policy_regex(pattern: str, flags: int = 0, engine: RegexEngine = "re2", *,
                         timeout_ms: int = DEFAULT_TIMEOUT_MS, where: str = "entry") -> PolicyRegex:
    """``flags`` are ``re`` flags. Raises ``ValueError`` with a message for the policy author
    (``where`` names what holds the ``engine`` key: "entry", "pattern"). The result holds no
    state between calls and is safe to use from several threads."""
    try:
        parsed = _parser.parse(pattern, flags)
        matches_empty = re.compile(pattern, flags).match("") is not None
    except re.error as exc:
        raise ValueError(f"{pattern!r} is not a valid regular expression: {exc}") from exc
    if matches_empty:
        raise ValueError(f"{pattern!r} matches the empty string")
    if engine == "python":
        return BacktrackingRegex(pattern, flags, timeout_ms)
    fix = f"or set `engine: python` on this {where} to run it with backtracking in the guard pool"
    features = backtracking_features(parsed.data)
    if features:
        feature, short = features[0]
        raise ValueError(f"{pattern!r} needs {feature}, which RE2 (linear-time matching, no backtracking) does "
                         f"not support: rewrite it without {short}, {fix}")
    try:
        translation = translate(pattern, flags)
    except Unsupported as exc:
        raise ValueError(f"{pattern!r} has {exc}, which RE2 cannot match the way Python does: rewrite it, {fix}"
                         ) from None
    return Re2Regex(pattern, translation, fix)


def backtracking_features(data: Any) -> list[tuple[str, str]]:
    """What in a parsed pattern needs a backtracking engine: (description, short name), in order."""
    found: list[tuple[str, str]] = []
    for op, av in data:
        feature: tuple[str, str] | None = None
        children: list[Any] = []
        if op is sre.GROUPREF:
            feature = (r"a backreference (\1 or (?P=name))", "the backreference")
        elif op is sre.GROUPREF_EXISTS:
            feature = ("a conditional group (?(1)yes|no)", "the conditional group")
            children = [av[1], av[2]]
        elif op in (sre.ASSERT, sre.ASSERT_NOT):
            direction, body = av
            side, opening = ("lookahead", "(?") if direction > 0 else ("lookbehind", "(?<")
            negative = op is sre.ASSERT_NOT
            feature = (f"a {'negative ' if negative else ''}{side} {opening}{'!' if negative else '='}...)",
                       f"the {side}")
            children = [body]
        elif op is sre.ATOMIC_GROUP:
            feature = ("an atomic group (?>...)", "the atomic group")
            children = [av]
        elif op is sre.POSSESSIVE_REPEAT:
            feature = ("a possessive quantifier (*+, ++, ?+ or {m,n}+)", "the possessive quantifier")
            children = [av[2]]
        elif op is sre.BRANCH:
            children = list(av[1])
        elif op is sre.SUBPATTERN:
            children = [av[3]]
        elif op in (sre.MAX_REPEAT, sre.MIN_REPEAT):
            children = [av[2]]
        if feature is not None and feature not in found:
            found.append(feature)
        for child in children:
            if child is not None:
                found.extend(f for f in backtracking_features(child) if f not in found)
    return found


class Re2Regex:
    """A pattern RE2 runs (linear time). Matching works on the UTF-8 bytes of the text;
    offsets are turned back into characters."""

    engine: RegexEngine = "re2"

    def __init__(self, pattern: str, translation: Re2Translation, fix: str = "") -> None:
        self.pattern = pattern
        self._starts, self._ends = translation.starts, translation.ends
        self._context = translation.context
        self._first = _re2_program(pattern, translation.pattern, fix)
        # A search after a finding (never at the start of the text) needs no \A alternative.
        resumed = translation.resumed
        self._resumed = _re2_program(pattern, resumed, fix) if resumed else self._first

    def spans(self, text: str) -> Iterator[tuple[int, int]]:
        data = text.encode("utf-8", "surrogatepass")
        chars = _CharOffsets(data) if len(data) != len(text) else None
        size, pos, program = len(data), 0, self._first
        while pos <= size:
            found = program.Match(_UNANCHORED, data, pos, size)
            if found[0][0] < 0:
                return
            start = _marked(found, self._starts) if self._starts else found[0][0]
            end = _marked(found, self._ends) if self._ends else found[0][1]
            if end > start:
                yield (chars(start), chars(end)) if chars is not None else (start, end)
                pos = end
            elif end >= size:
                return
            else:
                pos = end if self._context else end + _char_length(data, end)
            if self._context and end > start and pos > 0:
                pos = _previous_char(data, pos)  # the character before the next finding is matched too
            program = self._resumed


def _re2_program(pattern: str, text: str, fix: str) -> Any:
    """RE2's own compiled program. Its ``Match`` is called directly rather than through the
    ``re2`` module's ``re``-like wrapper, which costs twice the search itself per call, and
    keyword scans run on the event loop for every request."""
    options = re2.Options()
    options.log_errors = False
    program = _re2.RE2(text.encode(), options)
    if not program.ok():
        reason = program.error()
        reason = reason.decode(errors="replace") if isinstance(reason, bytes) else reason
        raise ValueError(f"{pattern!r}: RE2 cannot compile it ({reason}): rewrite it, {fix}")
    return program


def _marked(spans: list[tuple[int, int]], groups: tuple[int, ...]) -> int:
    for group in groups:
        if spans[group][0] >= 0:
            return spans[group][0]
    raise AssertionError("no marker group took part in the match")


class _CharOffsets:
    """Byte offsets into UTF-8 to character offsets, for offsets that never go back."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._byte = self._char = 0

    def __call__(self, offset: int) -> int:
        if offset < self._byte:
            self._byte = self._char = 0
        self._char += len(self._data[self._byte:offset].translate(None, _CONTINUATION))
        self._byte = offset
        return self._char


def _previous_char(data: bytes, offset: int) -> int:
    offset -= 1
    while offset > 0 and 0x80 <= data[offset] < 0xC0:
        offset -= 1
    return offset


def _char_length(data: bytes, offset: int) -> int:
    end = offset + 1
    while end < len(data) and 0x80 <= data[end] < 0xC0:
        end += 1
    return end - offset


class BacktrackingRegex:
    """An ``engine: python`` pattern: the ``regex`` module, GIL released, a timeout per search."""

    engine: RegexEngine = "python"

    def __init__(self, pattern: str, flags: int, timeout_ms: int) -> None:
        self.pattern = pattern
        self._timeout_ms = timeout_ms
        regex_flags = 0
        for flag, same in _REGEX_FLAGS.items():
            if flags & flag:
                regex_flags |= same
        try:
            self._compiled = regex.compile(pattern, regex_flags)
        except regex.error as exc:
            raise ValueError(f"{pattern!r} is not a valid regular expression: {exc}") from exc

    def spans(self, text: str) -> Iterator[tuple[int, int]]:
        pos = 0
        while pos <= len(text):
            raise_if_abandoned()
            try:
                match = self._compiled.search(text, pos, timeout=self._timeout_ms / 1000, concurrent=True)
            except TimeoutError:
                raise PatternTimeout(f"pattern {self.pattern!r} ran past its {self._timeout_ms} ms timeout") from None
            if match is None:
                return
            start, end = match.span()
            if end > start:
                yield start, end
            pos = end if end > start else end + 1
