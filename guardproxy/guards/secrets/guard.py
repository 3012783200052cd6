"""``guard: secrets``: API keys, tokens, private keys and passwords, found by the rules of
``rules.py`` and labelled with their kind, so a redaction reads ``[SECRET:aws_access_key]``.

Cheap enough to run inline: a rule's regex runs only when one of its keywords is in the text, and
RE2 matches in linear time. Where rules overlap, a specific format wins over a generic
context-and-entropy rule, and a longer match over a shorter one.

Streams: the stream guard never releases text from the start of a finding that reaches into its
held-back tail. Every format with a distinctive start is recognised, in full or by its rule's
*partial* (the secret cut short at the end of the text), within ``min_match_chars`` characters,
so no prefix of a secret leaves before the secret is recognised, however long it grows. In a
finished text a partial reports a secret cut short at its very end.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from typing import ClassVar

from guardproxy.guards.base import Finding, GuardConfig, GuardContext, GuardKind, Segment
from guardproxy.guards.regex_safety import PolicyRegex
from guardproxy.guards.secrets.config import SecretsConfig
from guardproxy.guards.secrets.rules import (
    CharOffsets,
    KeywordSet,
    Rule,
    load_rules,
    secret_span,
    shannon_entropy,
    widen_left,
)

# Within this many characters of its start, a secret of every format with a distinctive start matches
# its rule or partial (the stream guard holds back at least this much).
RECOGNISED_WITHIN = 32
_LINE_REACH = 1_000
_FORMAT, _CONTEXT, _GENERIC, _PARTIAL = 0, 1, 2, 3  # which of overlapping candidates wins, first first


def redaction_text(kind: str) -> str:
    return f"[SECRET:{kind}]"


class SecretsGuard:
    """Reports each secret's span with its kind as the label (see the module docstring)."""

    Config: ClassVar[type[GuardConfig]] = SecretsConfig
    kind: ClassVar[GuardKind] = "inline"
    cacheable: ClassVar[bool] = True  # a segment's findings depend on its text alone
    min_match_chars: ClassVar[int] = RECOGNISED_WITHIN

    def __init__(self, config: SecretsConfig) -> None:
        ruleset = load_rules()
        wanted = set(config.kinds) if config.kinds is not None else None
        self._rules = [rule for rule in ruleset.rules if wanted is None or rule.kind in wanted]
        self._global_allow = ruleset.allow
        self._allow = frozenset(config.allow)
        self._allow_patterns: list[PolicyRegex] = config.compiled_allow_patterns()
        self._entropy_override = config.entropy_threshold
        self._keywords = KeywordSet(sorted({k for rule in self._rules for k in rule.keywords}))
        self._always = [rule for rule in self._rules if not rule.keywords]

    def warm(self) -> None:
        return None

    def scan(self, segments: Sequence[Segment], context: GuardContext) -> list[Finding]:
        findings: list[Finding] = []
        for index, segment in enumerate(segments):
            for start, end, kind in self.spans(segment.text):
                findings.append(Finding(kind, 1.0, index, start, end, replacement=redaction_text(kind)))
        return findings

    def spans(self, text: str) -> list[tuple[int, int, str]]:
        """The (start, end, kind) of each secret in ``text``, left to right, never overlapping."""
        present = self._keywords.present(text.lower())
        if not present and not self._always:
            return []
        data = text.encode("utf-8", "surrogatepass")
        chars = CharOffsets(text, data)
        candidates: list[tuple[int, int, int, str]] = []  # (rank, start, end, kind), in characters
        for rule in self._rules:
            if rule.keywords and not present.intersection(rule.keywords):
                continue
            for groups in rule.program.matches(data):
                span = self._secret(rule, text, groups, rule.secret_group, chars)
                if span is not None:
                    # A rule that reads the secret's own format says more than one that reads its context.
                    rank = _GENERIC if rule.generic else _FORMAT if span[0] <= chars(groups[0][0]) else _CONTEXT
                    candidates.append((rank, *span, rule.kind))
            if rule.partial is not None:
                for groups in rule.partial.matches(data):
                    span = self._secret(rule, text, groups, 0, chars)
                    if span is not None:
                        candidates.append((_PARTIAL, *span, rule.kind))
        return _without_overlaps(candidates)

    def _secret(self, rule: Rule, text: str, groups: list[tuple[int, int]], secret_group: int,
                chars: CharOffsets) -> tuple[int, int] | None:
        """The secret's character span in one match of the rule or its partial, or None when it is
        not reported (too little entropy, or allowed)."""
        start, end = secret_span(groups, secret_group)
        if start < 0 or end <= start:
            return None
        start, end = chars(start), chars(end)
        secret = text[start:end]
        if start == chars(groups[0][0]) and end == chars(groups[0][1]):  # the whole match: trim newlines
            stripped = secret.strip("\n")
            start += len(secret) - len(secret.lstrip("\n"))
            end = start + len(stripped)
            secret = stripped
        if not secret:
            return None
        minimum = self._entropy_override if rule.generic and self._entropy_override is not None else rule.entropy
        if minimum and shannon_entropy(secret) <= minimum:
            return None
        if secret in self._allow or any(any(p.spans(secret)) for p in self._allow_patterns):
            return None
        match_start, match_end = chars(groups[0][0]), chars(groups[0][1])
        if rule.left_context:
            match_start = widen_left(text, match_start, 0)
        match = text[match_start:match_end]
        line = _line(text, match_start, match_end) if rule.needs_line else ""
        if self._global_allow.allows(secret, match, line):
            return None
        if any(allow.allows(secret, match, line) for allow in rule.allow):
            return None
        return start, end


def _line(text: str, start: int, end: int) -> str:
    """The line around a match, at most ``_LINE_REACH`` characters on either side: a text of one long
    line with thousands of matches must not cost time quadratic in its length."""
    first = text.rfind("\n", max(0, start - _LINE_REACH), start) + 1 or max(0, start - _LINE_REACH)
    last = text.find("\n", end, end + _LINE_REACH)
    return text[first : last if last >= 0 else min(len(text), end + _LINE_REACH)]


def _without_overlaps(candidates: list[tuple[int, int, int, str]]) -> list[tuple[int, int, str]]:
    """Specific rules before generic ones before partials, longer before shorter; a candidate that
    overlaps one already kept is dropped."""
    starts: list[int] = []  # the kept spans, sorted; they never overlap, so their ends are sorted too
    kept: list[tuple[int, int, str]] = []
    for _, start, end, kind in sorted(candidates, key=lambda c: (c[0], c[1] - c[2], c[1])):
        at = bisect.bisect_right(starts, start)
        if (at > 0 and kept[at - 1][1] > start) or (at < len(kept) and kept[at][0] < end):
            continue
        starts.insert(at, start)
        kept.insert(at, (start, end, kind))
    return kept
