"""The per-segment findings cache: digests as keys, renumbering, the LRU bound, which guards opt in."""

from __future__ import annotations

from guardproxy.engine.findings_cache import FindingsCache, segment_key
from guardproxy.guards import Finding, Segment
from guardproxy.guards.base import findings_cacheable
from guardproxy.guards.grounding.guard import GroundingGuard
from guardproxy.guards.keywords import KeywordsConfig, KeywordsGuard
from guardproxy.guards.pii.config import PiiConfig
from guardproxy.guards.pii.guard import PiiGuard
from guardproxy.guards.topics.config import Topic, TopicsConfig
from guardproxy.guards.topics.guard import TopicsGuard
from guardproxy.guards.toxicity.config import ToxicityConfig
from guardproxy.guards.toxicity.guard import ToxicityGuard


def test_keys_are_role_and_digest_never_the_text() -> None:
    text = "my card is 4111 1111 1111 1111"
    role, digest = segment_key(Segment(text, ("messages", 3, "content"), "user"))
    assert role == "user" and isinstance(digest, bytes) and len(digest) == 16
    assert text.encode() not in digest
    assert segment_key(Segment(text, ("elsewhere",), "user")) == (role, digest)  # the path does not matter
    assert segment_key(Segment(text, (), "assistant")) != (role, digest)  # the role does
    assert segment_key(Segment(text + ".", (), "user"))[1] != digest


def test_lookup_scans_only_missing_segments_and_renumbers_hits() -> None:
    cache = FindingsCache(16)
    a, b, c = (segment_key(Segment(t, (), "user")) for t in ("alpha", "beta", "gamma"))
    first = cache.lookup([a, b])
    assert first.missing == [0, 1]
    assert first.complete([Finding("x", 1.0, 1, 0, 2)]) == [Finding("x", 1.0, 1, 0, 2)]

    second = cache.lookup([c, a, b])  # the history again, in new places, and one new segment
    assert second.missing == [0]
    found = second.complete([Finding("y", 0.5, 0)])  # numbered as in the scan of the missing segments
    assert found == [Finding("y", 0.5, 0), Finding("x", 1.0, 2, 0, 2)]
    assert cache.lookup([b, c]).missing == []


def test_least_recently_used_entries_go_first_and_size_zero_keeps_nothing() -> None:
    cache = FindingsCache(2)
    keys = [segment_key(Segment(str(i))) for i in range(3)]
    cache.put(keys[0], [])
    cache.put(keys[1], [])
    assert cache.get(keys[0]) == ()  # now the most recently used
    cache.put(keys[2], [])
    assert len(cache) == 2 and cache.get(keys[1]) is None and cache.get(keys[0]) == ()

    empty = FindingsCache(0)
    empty.put(keys[0], [])
    assert len(empty) == 0 and empty.lookup([keys[0]]).missing == [0]


def test_which_built_in_guards_opt_in() -> None:
    """Only guards whose findings follow from a segment's text and role alone: not PII (its
    placeholders are numbered across the request), not grounding (documents, prompt), and
    not a guard that asks the upstream (an LLM judge, a moderation endpoint)."""
    topic = Topic(name="travel", description="Travel.", keywords=["flight"])
    assert findings_cacheable(KeywordsGuard(KeywordsConfig(terms=["x"])))
    assert findings_cacheable(ToxicityGuard(ToxicityConfig()))
    assert not findings_cacheable(ToxicityGuard(ToxicityConfig(detector="moderation")))
    assert findings_cacheable(TopicsGuard(TopicsConfig(topics=[topic], method="keywords")))
    assert not findings_cacheable(TopicsGuard(TopicsConfig(topics=[topic], method="llm", judge_model="m")))
    assert not findings_cacheable(PiiGuard(PiiConfig()))
    assert not findings_cacheable(GroundingGuard)
