"""``guard: keywords``: literal phrases and regular expressions.

Terms match on word boundaries, so ``ban`` does not fire inside ``banana``;
patterns are plain regular expressions and match wherever they match.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import ClassVar

from pydantic import field_validator, model_validator

from guardproxy.guards.base import Finding, GuardConfig, GuardContext, GuardKind, Segment, validate_regex
from guardproxy.guards.registry import GuardType


class KeywordsConfig(GuardConfig):
    terms: list[str] = []
    patterns: list[str] = []
    case_sensitive: bool = False
    label: str | None = None

    @field_validator("terms")
    @classmethod
    def _terms_not_blank(cls, terms: list[str]) -> list[str]:
        for term in terms:
            if not term.strip():
                raise ValueError("terms must not contain empty strings")
        return terms

    @field_validator("patterns")
    @classmethod
    def _patterns_compile(cls, patterns: list[str]) -> list[str]:
        return [validate_regex(pattern) for pattern in patterns]

    @model_validator(mode="after")
    def _something_to_match(self) -> KeywordsConfig:
        if not self.terms and not self.patterns:
            raise ValueError("give at least one of 'terms' or 'patterns'")
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
    kind: ClassVar[GuardKind] = "inline"  # a few compiled regular expressions
    cacheable: ClassVar[bool] = True  # a segment's matches depend on its text alone

    def __init__(self, config: KeywordsConfig) -> None:
        flags = 0 if config.case_sensitive else re.IGNORECASE
        self._matchers: list[tuple[str, re.Pattern[str]]] = []
        for term in config.terms:
            self._matchers.append((config.label or term, re.compile(_term_regex(term), flags)))
        for index, pattern in enumerate(config.patterns):
            self._matchers.append((config.label or f"pattern:{index}", re.compile(pattern, flags)))
        # A stream must hold back at least this much, or a match glued to a long word could leave
        # its first characters before the pattern can see it (read by the stream guard).
        self.min_match_chars = max(_shortest_match(m.pattern) for _, m in self._matchers)

    def warm(self) -> None:
        return None

    def scan(self, segments: Sequence[Segment], context: GuardContext) -> list[Finding]:
        findings: list[Finding] = []
        for index, segment in enumerate(segments):
            for label, matcher in self._matchers:
                for match in matcher.finditer(segment.text):
                    if match.end() > match.start():
                        findings.append(Finding(label, 1.0, index, match.start(), match.end()))
        return findings


GUARD_TYPE = GuardType(KeywordsConfig, "guardproxy.guards.keywords:KeywordsGuard")
