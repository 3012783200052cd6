"""``guard: pii``: personal data found with Presidio (spaCy NER plus patterns)."""

from guardproxy.guards.pii.config import PiiConfig
from guardproxy.guards.registry import GuardType

GUARD_TYPE = GuardType(PiiConfig, "guardproxy.guards.pii.guard:PiiGuard")

__all__ = ["GUARD_TYPE"]
