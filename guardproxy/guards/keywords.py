"""``guard: keywords``: literal phrases and regular expressions.

Terms match on word boundaries, so ``ban`` does not fire inside ``banana``;
patterns are plain regular expressions and match wherever they match. Both run
on RE2 in linear time (``regex_safety.py``), inline on the event loop; patterns
an entry declares ``engine: python`` run with backtracking, so the entry runs in
the guard pool instead.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import ClassVar

from pydantic import Field, field_validator, model_validator

from guardproxy.guards.base import Finding, GuardConfig, GuardContext, GuardKind, Segment
from guardproxy.guards.regex_safety import DEFAULT_TIMEOUT_MS, PolicyRegex, RegexEngine, compile_policy_regex
from guardproxy.guards.registry import GuardType


class KeywordsConfig(GuardConfig):
    terms: list[str] = []
    patterns: list[str] = []
    case_sensitive: bool = False
    label: str | None = None
    engine: RegexEngine = "re2"
    regex_timeout_ms: int = Field(DEFAULT_TIMEOUT_MS, gt=0, le=60_000)

    @property
    def flags(self) -> int:
        return 0 if self.case_sensitive else re.IGNORECASE

    def compiled_patterns(self) -> list[PolicyRegex]:
        return [compile_policy_regex(pattern, self.flags, self.engine, timeout_ms=self.regex_timeout_ms)
                for pattern in self.patterns]

    @field_validator("terms")
    @classmethod
    def _terms_not_blank(cls, terms: list[str]) -> list[str]:
        for term in terms:
            if not term.strip():
                raise ValueError("terms must not contain empty strings")
        return terms

    @model_validator(mode="after")
    def _something_to_match(self) -> KeywordsConfig:
        if not self.terms and not self.patterns:
            raise ValueError("give at least one of 'terms' or 'patterns'")
        try:
            self.compiled_patterns()
        except ValueError as exc:
            raise ValueError(f"patterns: {exc}") from None
        return self


def _term_regex(term: str) -> str:
    """Whitespace inside a term matches any run of whitespace; edges are word boundaries."""
    body = r"\s+".join(re.escape(word) for word in term.split())
    left = r"\b" if re.match(r"\w", term.strip()[0]) else ""
    right = r"\b" if re.match(r"\w", term.strip()[-1]) else ""
    return f"{left}{body}{right}"


def _shortest_match(pattern: str) -> int:
    """The length of the shortest text ``pattern`` can match (0 when it cannot be told)."""
    try:
        from re import _parser  # type: ignore[attr-defined]  # CPython's own parser, for getwidth()

        return int(_parser.parse(pattern).getwidth()[0])
    except (ImportError, AttributeError, TypeError):  # another interpreter or version: no minimum is claimed
        return 0


class KeywordsGuard:
    """Fires on each occurrence of a term or a pattern.

    The label is the guard's ``label`` key if set, else the term as written or
    ``pattern:<n>`` (the pattern's index), so a finding never echoes the matched text.
    """

    Config: ClassVar[type[GuardConfig]] = KeywordsConfig
    cacheable: ClassVar[bool] = True  # a segment's matches depend on its text alone

    def __init__(self, config: KeywordsConfig) -> None:
        # A few linear-time expressions run inline; backtracking ones only in the pool, under their timeout.
        self.kind: GuardKind = "cpu" if config.engine == "python" and config.patterns else "inline"
        self._matchers: list[tuple[str, PolicyRegex]] = []
        for term in config.terms:
            self._matchers.append((config.label or term, compile_policy_regex(_term_regex(term), config.flags)))
        for index, compiled in enumerate(config.compiled_patterns()):
            self._matchers.append((config.label or f"pattern:{index}", compiled))
        # A stream must hold back at least this much, or a match glued to a long word could leave
        # its first characters before the pattern can see it (read by the stream guard).
        self.min_match_chars = max(_shortest_match(m.pattern) for _, m in self._matchers)

    def warm(self) -> None:
        return None

    def scan(self, segments: Sequence[Segment], context: GuardContext) -> list[Finding]:
        findings: list[Finding] = []
        for index, segment in enumerate(segments):
            for label, matcher in self._matchers:
                for start, end in matcher.spans(segment.text):
                    findings.append(Finding(label, 1.0, index, start, end))
        return findings


GUARD_TYPE = GuardType(KeywordsConfig, "guardproxy.guards.keywords:KeywordsGuard")
