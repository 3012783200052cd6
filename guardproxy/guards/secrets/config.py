"""The policy keys of ``guard: secrets``."""

from __future__ import annotations

import difflib

from pydantic import Field, field_validator

from guardproxy.guards.base import GuardConfig
from guardproxy.guards.regex_safety import PolicyRegex, compile_policy_regex
from guardproxy.guards.secrets.rules import load_rules


class SecretsConfig(GuardConfig):
    """``kinds``: the kinds to report (default: all); ``allow``: values never reported, exactly as
    written; ``allow_patterns``: regular expressions (RE2, Python syntax) a value never reported
    matches whole; ``entropy_threshold``: the Shannon entropy (bits per character) a value of a
    generic rule (``generic_secret``, ``password``) must exceed, instead of each rule's own."""

    kinds: list[str] | None = None
    allow: list[str] = []
    allow_patterns: list[str] = []
    entropy_threshold: float | None = Field(None, ge=0.0, le=8.0)

    @field_validator("kinds")
    @classmethod
    def _known_kinds(cls, kinds: list[str] | None) -> list[str] | None:
        if kinds is None:
            return None
        if not kinds:
            raise ValueError("kinds is empty: leave it out to report every kind")
        known = load_rules().kinds
        for kind in kinds:
            if kind not in known:
                close = difflib.get_close_matches(kind, sorted(known), n=3)
                hint = f"; did you mean {', '.join(close)}?" if close else ""
                raise ValueError(f"unknown kind {kind!r}{hint} (the kinds are listed in policies/README.md)")
        return kinds

    @field_validator("allow")
    @classmethod
    def _allow_not_blank(cls, allow: list[str]) -> list[str]:
        if any(not value.strip() for value in allow):
            raise ValueError("allow must not contain empty strings")
        return allow

    @field_validator("allow_patterns")
    @classmethod
    def _patterns_compile(cls, patterns: list[str]) -> list[str]:
        for pattern in patterns:
            try:
                compile_policy_regex(pattern)
            except ValueError as exc:
                raise ValueError(f"allow_patterns: {exc}") from None
        return patterns

    def compiled_allow_patterns(self) -> list[PolicyRegex]:
        """Each pattern anchored at both ends, so it must match a whole value."""
        return [compile_policy_regex(rf"\A(?:{pattern})\Z") for pattern in self.allow_patterns]
