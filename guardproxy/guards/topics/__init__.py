"""``guard: topics``: text about a banned topic, found by lemma keywords, sentence
embeddings (the default) or an LLM judge."""

from guardproxy.guards.topics.guard import TopicsGuard

__all__ = ["TopicsGuard"]
