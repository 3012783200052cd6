"""``guard: toxicity`` policy keys, each with its documented default.

The default thresholds were picked on the measured dev data (see
``benchmarks/toxicity_quality.py``): the highest F1 whose false-positive rate
stays at or below 0.15 on OLID + ETHOS, which the shipped models never saw.
The encoder's was chosen without OLID and ETHOS, on ToxiGen rows scored by a
model trained without them (``benchmarks/toxicity_encoder_loso.py``).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from guardproxy.guards.base import GuardConfig

Detector = Literal["profanity", "moderation", "encoder"]

# Threshold defaults per scoring mode; a policy's ``threshold`` overrides them.
DEFAULT_THRESHOLD_PROFANITY = 0.375
DEFAULT_THRESHOLD_COMBINED = 0.5
DEFAULT_THRESHOLD_MODERATION = 0.5
DEFAULT_THRESHOLD_ENCODER = 0.42  # best F1 on held-out ToxiGen at FPR <= 0.10 (benchmarks/toxicity_encoder_loso.py)
DEFAULT_MODERATION_MODEL = "omni-moderation-latest"
WINDOW_CHARS = 200


class ToxicityConfig(GuardConfig):
    detector: Detector = "profanity"
    implicit: bool = True
    threshold: float | None = Field(None, ge=0, le=1)
    min_chars: int = Field(8, ge=1, le=100_000)
    window_chars: int = Field(WINDOW_CHARS, ge=40, le=5000)
    allow: list[str] = []
    moderation_model: str = Field(DEFAULT_MODERATION_MODEL, min_length=1)
    moderation_timeout_ms: int = Field(2000, ge=1, le=600_000)
    cache_size: int = Field(4096, ge=0, le=1_000_000)

    @field_validator("allow")
    @classmethod
    def _terms_not_blank(cls, terms: list[str]) -> list[str]:
        for term in terms:
            if not term.strip():
                raise ValueError("allow must not contain empty strings")
        return terms

    def effective_threshold(self) -> float:
        """``threshold`` if set, else the measured default for this detector and mode."""
        if self.threshold is not None:
            return self.threshold
        if self.detector == "moderation":
            return DEFAULT_THRESHOLD_MODERATION
        if self.detector == "encoder":
            return DEFAULT_THRESHOLD_ENCODER
        return DEFAULT_THRESHOLD_COMBINED if self.implicit else DEFAULT_THRESHOLD_PROFANITY
