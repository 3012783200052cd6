"""``guard: grounding``: answer sentences that the retrieved context does not support
(hallucination check), scored from offline signals (the default) or by an LLM judge."""

from guardproxy.guards.grounding.config import GroundingConfig
from guardproxy.guards.registry import GuardType

GUARD_TYPE = GuardType(GroundingConfig, "guardproxy.guards.grounding.guard:GroundingGuard")

__all__ = ["GUARD_TYPE"]
