"""``guard: pii``: personal data found with Presidio (spaCy NER plus patterns)."""

from guardproxy.guards.pii.guard import PiiGuard

__all__ = ["PiiGuard"]
