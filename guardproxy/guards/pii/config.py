"""``guard: pii`` policy keys, each with its documented default."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from guardproxy.guards.base import GuardConfig
from guardproxy.guards.pii.defaults import DEFAULT_ENTITIES, DEFAULT_NAMES_MODEL, SPACY_MODELS, NamesModel
from guardproxy.guards.regex_safety import DEFAULT_TIMEOUT_MS, PolicyRegex, RegexEngine, compile_policy_regex

Style = Literal["placeholder", "type", "mask", "hash"]
# Presidio's PatternRecognizer matches with these flags; custom patterns keep that meaning on either engine.
PATTERN_FLAGS = re.IGNORECASE | re.MULTILINE | re.DOTALL


class CustomPattern(BaseModel):
    """A regex recognizer declared in YAML, e.g. an employee id or ticket number."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_]{0,63}$", description="the entity type it reports")
    regex: str
    score: float = Field(0.8, gt=0, le=1)
    context: list[str] = []
    engine: RegexEngine = "re2"

    def compiled(self, timeout_ms: int = DEFAULT_TIMEOUT_MS) -> PolicyRegex:
        return compile_policy_regex(self.regex, PATTERN_FLAGS, self.engine, timeout_ms=timeout_ms, where="pattern")

    @model_validator(mode="after")
    def _compiles(self) -> CustomPattern:
        try:
            self.compiled()
        except ValueError as exc:
            raise ValueError(f"regex: {exc}") from None
        return self


class PiiConfig(GuardConfig):
    entities: list[str] = Field(default_factory=lambda: list(DEFAULT_ENTITIES))
    score_threshold: float | None = Field(None, ge=0, le=1)
    entity_thresholds: dict[str, float] = {}
    language: str = "en"
    nlp: Literal["ner", "pattern"] = "ner"
    names_model: NamesModel = DEFAULT_NAMES_MODEL
    allow: list[str] = []
    deny: list[str] = []
    deny_label: str = Field("DENY_LIST", pattern=r"^[A-Za-z][A-Za-z0-9_]{0,63}$")
    patterns: list[CustomPattern] = []
    style: Style = "placeholder"
    restore: bool = False
    hash_salt_env: str | None = None
    cache_size: int = Field(4096, ge=0, le=1_000_000)
    regex_timeout_ms: int = Field(DEFAULT_TIMEOUT_MS, gt=0, le=60_000)

    @field_validator("language")
    @classmethod
    def _language_has_model(cls, language: str) -> str:
        if language not in SPACY_MODELS:
            raise ValueError(f"no model is shipped for language {language!r}; supported: {sorted(SPACY_MODELS)}")
        return language

    @field_validator("entity_thresholds")
    @classmethod
    def _thresholds_in_range(cls, thresholds: dict[str, float]) -> dict[str, float]:
        for entity, value in thresholds.items():
            if not 0 <= value <= 1:
                raise ValueError(f"entity_thresholds.{entity} must be between 0 and 1")
        return thresholds

    @model_validator(mode="after")
    def _restore_needs_placeholders(self) -> PiiConfig:
        if self.restore and self.style != "placeholder":
            raise ValueError("restore: true needs style: placeholder (other styles cannot be mapped back)")
        if not self.entities and not self.deny and not self.patterns:
            raise ValueError("nothing to detect: give entities, deny terms or patterns")
        return self

    def reported_entities(self) -> list[str]:
        """Every entity type this guard may report, custom ones included."""
        custom = [p.name for p in self.patterns] + ([self.deny_label] if self.deny else [])
        return [*self.entities, *(c for c in custom if c not in self.entities)]
