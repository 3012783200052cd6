"""The PII guard: finds personal data and says what each value becomes.

Findings carry the replacement text (placeholder, type, mask or hash). With
``restore: true``, placeholder findings are marked restorable: the engine then
keeps this request's placeholder -> value map in memory and puts the values
back where the model's answer repeats a placeholder.
"""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Sequence
from typing import ClassVar

from presidio_analyzer import AnalyzerEngine, PatternRecognizer

from guardproxy.guards.api import Finding, GuardConfig, GuardContext, GuardKind, Segment
from guardproxy.guards.pii.analyzer import build_analyzer
from guardproxy.guards.pii.config import PiiConfig
from guardproxy.guards.pii.detection import Detection, DetectionCache, analyze_batch, resolve_overlaps
from guardproxy.guards.pii.policy_patterns import PolicyPatternRecognizer
from guardproxy.guards.pii.recognizers import DEFAULT_ENTITY_THRESHOLDS, DEFAULT_SCORE_THRESHOLD, quality_recognizers
from guardproxy.guards.pii.styles import MASK, PLACEHOLDER, PlaceholderNumbering, salted_hash

log = logging.getLogger("guardproxy.guards.pii")


class PiiGuard:
    Config: ClassVar[type[GuardConfig]] = PiiConfig
    kind: ClassVar[GuardKind] = "cpu"

    def __init__(self, config: PiiConfig) -> None:
        self.config = config
        self._threshold = DEFAULT_SCORE_THRESHOLD if config.score_threshold is None else config.score_threshold
        self._thresholds = {**DEFAULT_ENTITY_THRESHOLDS, **config.entity_thresholds}
        self._entities = config.reported_entities()
        self._allow = {term.casefold() for term in config.allow}
        self._cache = DetectionCache(config.cache_size)
        self._salt = self._load_salt(config.hash_salt_env)
        self._analyzer: AnalyzerEngine | None = None

    @staticmethod
    def _load_salt(env: str | None) -> bytes:
        if env is None:
            return secrets.token_bytes(16)  # stable within this process only
        value = os.environ.get(env)
        if not value:
            raise ValueError(f"hash_salt_env names {env}, which is not set or empty")
        return value.encode()

    def warm(self) -> None:
        """Build the analyzer and run it once, so the first request pays nothing."""
        analyzer = self._get_analyzer()
        analyze_batch(analyzer, ["warm up: Jane Doe, jane@example.com"], self.config.language, self._entities, 1.0)

    def _get_analyzer(self) -> AnalyzerEngine:
        if self._analyzer is None:
            extra, remove = quality_recognizers(self.config.language, self.config.names_model)
            custom: list[PatternRecognizer] = [
                PolicyPatternRecognizer(p, self.config.language, self.config.regex_timeout_ms)
                for p in self.config.patterns
            ]
            if self.config.deny:
                custom.append(PatternRecognizer(supported_entity=self.config.deny_label, name="policy:deny",
                                                deny_list=list(self.config.deny),
                                                supported_language=self.config.language))
            self._analyzer = build_analyzer(self.config.nlp, self.config.language, [*extra, *custom], remove)
        return self._analyzer

    def detect(self, texts: Sequence[str]) -> list[list[Detection]]:
        """Detections per text, after thresholds, allow list and overlap merging."""
        keys = [DetectionCache.key(text) for text in texts]
        found: list[tuple[Detection, ...] | None] = [self._cache.get(key) for key in keys]
        missing = [i for i, f in enumerate(found) if f is None]
        if missing:
            floor = min([self._threshold, *self._thresholds.values()])
            fresh = analyze_batch(self._get_analyzer(), [texts[i] for i in missing], self.config.language,
                                  self._entities, floor)
            for index, detections in zip(missing, fresh, strict=True):
                found[index] = detections
                self._cache.put(keys[index], detections)
        return [self._keep(text, detections or ()) for text, detections in zip(texts, found, strict=True)]

    def _keep(self, text: str, detections: Sequence[Detection]) -> list[Detection]:
        kept = []
        placeholders = [(m.start(), m.end()) for m in PLACEHOLDER.finditer(text)]
        for d in detections:
            if d.score < self._thresholds.get(d.entity, self._threshold):
                continue
            if text[d.start:d.end].strip().casefold() in self._allow:
                continue
            if any(d.start < end and d.end > start for start, end in placeholders):
                continue  # our own placeholders (and the model repeating them) are not personal data
            kept.append(d)
        return resolve_overlaps(kept)

    def scan(self, segments: Sequence[Segment], context: GuardContext) -> list[Finding]:
        numbering = PlaceholderNumbering()
        restorable = self.config.restore and context.stage == "input"
        findings: list[Finding] = []
        for index, (segment, detections) in enumerate(zip(segments, self.detect([s.text for s in segments]),
                                                          strict=True)):
            for d in detections:
                value = segment.text[d.start:d.end]
                findings.append(Finding(d.entity, d.score, index, d.start, d.end,
                                        self._render(d.entity, value, numbering), restorable))
        return findings

    def _render(self, entity: str, value: str, numbering: PlaceholderNumbering) -> str:
        style = self.config.style
        if style == "placeholder":
            return numbering.placeholder(entity, value)
        if style == "type":
            return f"<{entity}>"
        if style == "mask":
            return MASK
        return salted_hash(value, self._salt, entity)
