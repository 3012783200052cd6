"""``guard: grounding``: answer sentences that the retrieved context does not support
(hallucination check), scored from offline signals (the default) or by an LLM judge."""

from guardproxy.guards.grounding.guard import GroundingGuard

__all__ = ["GroundingGuard"]
