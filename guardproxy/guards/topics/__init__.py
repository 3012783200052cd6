"""``guard: topics``: text about a banned topic, found by lemma keywords, sentence
embeddings (the default) or an LLM judge."""

from guardproxy.guards.registry import GuardType
from guardproxy.guards.topics.config import TopicsConfig

GUARD_TYPE = GuardType(TopicsConfig, "guardproxy.guards.topics.guard:TopicsGuard")

__all__ = ["GUARD_TYPE"]
