"""The secret rules, read from ``data/rules.json`` (gitleaks' list and a few from detect-secrets,
converted by ``training/secrets_rules.py``; credits in ``data/NOTICE``) and compiled with RE2.

The regexes are Go RE2 syntax, so they are compiled by RE2 as written, not through the Python-syntax
translation of ``regex_safety``: RE2 matches in time linear in the text. Matching runs on the text's
UTF-8 bytes and turns offsets back into characters.

A rule fires the way gitleaks fires it: a match of its regex, whose secret (its ``secret_group``, else
the first group that took part, else the whole match) has more Shannon entropy than the rule's minimum
and is not allowed by the global or the rule's allowlists (regexes on the secret, the match or its
line; stop words inside the secret). A rule runs only on texts that contain one of its keywords.
"""

from __future__ import annotations

import bisect
import functools
import json
import math
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any, Literal

import re2
from re2 import _re2

_UNANCHORED = _re2.RE2.Anchor.UNANCHORED
AllowTarget = Literal["secret", "match", "line"]


def shannon_entropy(value: str) -> float:
    """Bits per character of ``value`` (gitleaks' ``shannonEntropy``)."""
    if not value:
        return 0.0
    size = len(value)
    return -sum(count / size * math.log2(count / size) for count in Counter(value).values())


class Program:
    """One RE2 program; ``matches`` yields every non-overlapping match's group spans, in bytes.
    RE2's own ``Match`` is called directly: the ``re2`` module's wrapper costs more than the search."""

    def __init__(self, pattern: str) -> None:
        options = re2.Options()
        options.log_errors = False
        self._program = _re2.RE2(pattern.encode(), options)
        if not self._program.ok():
            raise ValueError(f"RE2 cannot compile {pattern!r}: {self._program.error()!r}")

    def matches(self, data: bytes) -> Iterator[list[tuple[int, int]]]:
        size, pos = len(data), 0
        while pos <= size:
            found = self._program.Match(_UNANCHORED, data, pos, size)
            if found[0][0] < 0:
                return
            yield found
            pos = found[0][1] if found[0][1] > found[0][0] else found[0][1] + 1

    def search(self, data: bytes) -> bool:
        return bool(self._program.Match(_UNANCHORED, data, 0, len(data))[0][0] >= 0)


class KeywordSet:
    """Which of many keywords occur in a text, in one RE2 pass (an RE2 ``Set`` reports every
    pattern that matches anywhere, overlapping or not). Keywords are lower case; so is the text given."""

    def __init__(self, keywords: Sequence[str]) -> None:
        self._keywords = list(keywords)
        options = re2.Options()
        options.log_errors = False
        self._set = _re2.Set(_UNANCHORED, options) if self._keywords else None
        for keyword in self._keywords:
            if self._set is not None and self._set.Add(re.escape(keyword).encode()) < 0:
                raise ValueError(f"RE2 cannot compile the keyword {keyword!r}")
        if self._set is not None and not self._set.Compile():
            raise ValueError("RE2 cannot compile the keyword set")

    def present(self, lowered: str) -> set[str]:
        if self._set is None:
            return set()
        return {self._keywords[i] for i in self._set.Match(lowered.encode("utf-8", "surrogatepass"))}


@dataclass(frozen=True)
class Allowlist:
    """Where a finding is allowed (not a secret): ``regexes`` (one alternation, as gitleaks joins
    them) found in the ``target`` (the secret, the whole match or its line), or ``stopwords``
    (one alternation too) inside the lower-cased secret."""

    target: AllowTarget
    regexes: Program | None
    stopwords: Program | None

    def allows(self, secret: str, match: str, line: str) -> bool:
        text = {"secret": secret, "match": match, "line": line}[self.target]
        if self.regexes is not None and text and self.regexes.search(text.encode("utf-8", "surrogatepass")):
            return True
        return self.stopwords is not None and self.stopwords.search(secret.lower().encode("utf-8", "surrogatepass"))


@dataclass(frozen=True)
class Rule:
    """One converted rule; ``partial`` matches the rule's secret cut short at the end of the text."""

    id: str
    kind: str
    keywords: tuple[str, ...]
    entropy: float
    secret_group: int
    generic: bool
    left_context: bool  # the match reaches left over up to 50 of ``[\w.-]`` (see ``widen_left``)
    program: Program
    partial: Program | None
    allow: tuple[Allowlist, ...]

    @property
    def needs_line(self) -> bool:
        return any(allow.target == "line" for allow in self.allow)


@dataclass(frozen=True)
class RuleSet:
    rules: tuple[Rule, ...]
    allow: Allowlist  # the global allowlist, on every rule's secret

    @property
    def kinds(self) -> frozenset[str]:
        return frozenset(rule.kind for rule in self.rules)


def _allowlist(raw: dict[str, Any]) -> Allowlist:
    regexes, stopwords = raw.get("regexes", []), raw.get("stopwords", [])
    return Allowlist(raw.get("target", "secret"),
                     Program("|".join(f"(?:{r})" for r in regexes)) if regexes else None,
                     Program("|".join(re.escape(w) for w in stopwords)) if stopwords else None)


@functools.cache
def load_rules() -> RuleSet:
    """The shipped rules, compiled once per process (on first use, not at import)."""
    raw = json.loads(resources.files("guardproxy.guards.secrets").joinpath("data/rules.json").read_text("utf-8"))
    rules = tuple(
        Rule(r["id"], r["kind"], tuple(r["keywords"]), float(r["entropy"]), int(r["secret_group"]),
             bool(r["generic"]), bool(r.get("left_context", False)), Program(r["regex"]),
             Program(r["partial"]) if r.get("partial") else None, tuple(_allowlist(a) for a in r["allow"]))
        for r in raw["rules"])
    return RuleSet(rules, _allowlist({"regexes": raw["allow"]["regexes"], "stopwords": raw["allow"]["stopwords"]}))


class CharOffsets:
    """Byte offsets into the UTF-8 of ``text`` to character offsets, in logarithmic time each (a text
    with thousands of matches must not cost time quadratic in its length)."""

    def __init__(self, text: str, data: bytes) -> None:
        self._starts: list[int] | None = None
        if len(data) != len(text):
            self._starts = [i for i, byte in enumerate(data) if byte & 0xC0 != 0x80]
            self._starts.append(len(data))

    def __call__(self, offset: int) -> int:
        return offset if self._starts is None else bisect.bisect_left(self._starts, offset)


LEFT_CONTEXT_CHARS = 50


def widen_left(text: str, start: int, floor: int) -> int:
    """Where a match of a gitleaks context rule starts: its regex opened with ``[\\w.-]{0,50}?``, which the
    converter took out (it made the search slower and never changes which secret is found); the match
    still starts at the leftmost of those characters before the keyword, not before ``floor``."""
    limit = max(floor, start - LEFT_CONTEXT_CHARS)
    while start > limit and (text[start - 1].isascii() and (text[start - 1].isalnum() or text[start - 1] in "_.-")):
        start -= 1
    return start


def secret_span(groups: Sequence[tuple[int, int]], secret_group: int) -> tuple[int, int]:
    """The bytes of the secret in a match: gitleaks' choice of group."""
    if secret_group > 0:
        return groups[secret_group] if secret_group < len(groups) else (-1, -1)
    for span in groups[1:]:
        if span[1] > span[0] >= 0:
            return span
    return groups[0]
