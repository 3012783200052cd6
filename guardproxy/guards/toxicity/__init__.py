"""``guard: toxicity``: abusive, profane and hateful text, scored sentence by sentence.

Signals: alt-profanity-check's linear model, averaged with a small head on
MiniLM embeddings for implicit hate (``implicit: true``), a fine-tuned MiniLM
classifier (``detector: encoder``), or the upstream's ``/v1/moderations``
endpoint (``detector: moderation``).
"""

from guardproxy.guards.registry import GuardType
from guardproxy.guards.toxicity.config import ToxicityConfig

GUARD_TYPE = GuardType(ToxicityConfig, "guardproxy.guards.toxicity.guard:ToxicityGuard")

__all__ = ["GUARD_TYPE"]
