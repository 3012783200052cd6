"""Guard registry: adding a guard is one module plus one line here."""

from __future__ import annotations

from guardproxy.guards.base import (
    Finding,
    Guard,
    GuardConfig,
    GuardContext,
    Segment,
    Stage,
    UpstreamCallError,
    UpstreamClient,
)
from guardproxy.guards.grounding import GroundingGuard
from guardproxy.guards.keywords import KeywordsGuard
from guardproxy.guards.pii import PiiGuard
from guardproxy.guards.topics import TopicsGuard
from guardproxy.guards.toxicity import ToxicityGuard

REGISTRY: dict[str, type[Guard]] = {
    "keywords": KeywordsGuard,
    "pii": PiiGuard,
    "toxicity": ToxicityGuard,
    "topics": TopicsGuard,
    "grounding": GroundingGuard,
}

__all__ = [
    "REGISTRY", "Finding", "Guard", "GuardConfig", "GuardContext", "Segment", "Stage", "UpstreamCallError",
    "UpstreamClient",
]
