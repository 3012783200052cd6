"""Placeholder until the quality work lands: stock recognizers, stock thresholds."""

from __future__ import annotations

from presidio_analyzer import EntityRecognizer

DEFAULT_ENTITIES: list[str] = [
    "PERSON", "EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "US_SSN", "IBAN_CODE", "IP_ADDRESS",
    "LOCATION", "STREET_ADDRESS", "US_BANK_NUMBER", "CRYPTO",
]
DEFAULT_SCORE_THRESHOLD: float = 0.35
DEFAULT_ENTITY_THRESHOLDS: dict[str, float] = {}


def quality_recognizers(language: str) -> tuple[list[EntityRecognizer], list[str]]:
    return [], []
