"""``guard: toxicity``: abusive, profane and hateful text, scored sentence by sentence.

Signals: alt-profanity-check's linear model, averaged with a small head on
MiniLM embeddings for implicit hate (``implicit: true``), or the upstream's
``/v1/moderations`` endpoint (``detector: moderation``).
"""

from guardproxy.guards.toxicity.guard import ToxicityGuard

__all__ = ["ToxicityGuard"]
