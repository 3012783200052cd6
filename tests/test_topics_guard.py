"""guard: topics: semantic scoring, lemma keywords, windows, threshold, cache and config validation."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from pydantic import ValidationError

from guardproxy.embeddings import CachedEncoder, MiniLMEncoder, Vectors, shared_encoder
from guardproxy.guards.base import Finding, GuardContext, Segment
from guardproxy.guards.topics.config import TopicsConfig
from guardproxy.guards.topics.guard import TopicsGuard
from guardproxy.guards.topics.semantic import listed_parts, reference_texts

TRAVEL: dict[str, Any] = {
    "name": "travel",
    "description": "Travel: booking flights, hotels and rental cars, luggage, visas and trip ideas.",
    "examples": ["Book me a flight to Rome next Friday.", "Find a hotel near the airport for two nights."],
    "keywords": ["flight", "hotel", "prescribe"],
}
MEDICINE: dict[str, Any] = {"name": "medicine", "description": "Prescription drugs and doses.",
                            "keywords": ["prescribing", "dose"]}
CONTEXT = GuardContext("input")


def guard(**settings: Any) -> TopicsGuard:
    return TopicsGuard(TopicsConfig(**{"topics": [TRAVEL], **settings}))


def scan(g: TopicsGuard, *texts: str, role: str = "user") -> list[Finding]:
    return g.scan([Segment(text, ("messages", i, "content"), role) for i, text in enumerate(texts)], CONTEXT)


def test_on_topic_paraphrase_fires_with_topic_name_and_off_topic_passes() -> None:
    g = guard(keyword_boost=0)
    findings = scan(g, "Which hotels near the beach in Nice have rooms this weekend?", "How do I sort a list?")
    assert [(f.label, f.segment) for f in findings] == [("travel", 0)]
    assert 0.48 <= findings[0].score <= 1 and findings[0].start is None


def test_threshold_decides() -> None:
    text = "Which hotels near the beach in Nice have rooms this weekend?"
    score = scan(guard(threshold=0.0, keyword_boost=0), text)[0].score
    assert scan(guard(threshold=round(score - 0.01, 2), keyword_boost=0), text)
    assert not scan(guard(threshold=round(score + 0.01, 2), keyword_boost=0), text)


def test_keyword_boost_raises_the_score_of_texts_naming_a_keyword() -> None:
    text = "Is the hotel breakfast included?"
    plain = scan(guard(threshold=0.0, keyword_boost=0), text)[0].score
    boosted = scan(guard(threshold=0.0, keyword_boost=0.2), text)[0].score
    assert boosted == pytest.approx(min(1.0, plain + 0.2), abs=1e-3)


def test_banned_request_inside_a_long_message_is_caught_by_its_sentence_window() -> None:
    filler = ("I have been refactoring our data pipeline at work. The tests are slow and the CI queue is long. "
              "My manager wants a report on the migration by Thursday. ")
    text = filler * 3 + "Also, book me a flight to Rome next Friday. " + filler
    assert not scan(guard(window_sentences=0, keyword_boost=0), text)
    [finding] = scan(guard(keyword_boost=0), text)
    assert finding.start is not None and "flight to Rome" in text[finding.start : finding.end]


def test_description_parts_are_references() -> None:
    from guardproxy.guards.topics.config import Topic

    topic = Topic(**TRAVEL)
    assert listed_parts(topic)[:2] == ["travel: booking flights", "travel: hotels"]
    assert reference_texts(topic)[-1] == "travel: prescribe"


@pytest.fixture
def embedded(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every text the topics guards made from here on send to the encoder, in order."""
    seen: list[str] = []

    class Counting(MiniLMEncoder):
        def __init__(self) -> None:
            self._inner = shared_encoder()

        def encode(self, texts: Sequence[str]) -> Vectors:
            seen.extend(texts)
            return self._inner.encode(texts)

    monkeypatch.setattr("guardproxy.guards.topics.guard.shared_encoder", Counting)
    return seen


def test_repeated_segments_are_embedded_once(embedded: list[str]) -> None:
    seen = embedded
    g = guard(keyword_boost=0)
    g.warm()
    seen.clear()
    scan(g, "Where should I go for a weekend in Spain?")
    scan(g, "Where should I go for a weekend in Spain?", "And what about Portugal?")
    assert seen == ["Where should I go for a weekend in Spain?", "And what about Portugal?"]
    assert isinstance(g._index._encoder, CachedEncoder)  # type: ignore[union-attr]


def test_keywords_match_on_lemmas_and_whole_words() -> None:
    g = guard(method="keywords", topics=[TRAVEL, MEDICINE])
    findings = scan(g, "She was prescribing antibiotics", "We prescribe rest", "The flights were late",
                    "flightless birds", "A hotelier")
    by_segment = {(f.segment, f.label) for f in findings}
    assert by_segment == {(0, "travel"), (0, "medicine"), (1, "travel"), (1, "medicine"), (2, "travel")}
    first = next(f for f in findings if f.segment == 2)
    assert (first.start, first.end, first.score) == (4, 11, 1.0)


def test_roles_limit_what_is_scanned() -> None:
    g = guard(method="keywords", roles=["user"])
    assert scan(g, "Book a flight", role="system") == []
    assert len(scan(g, "Book a flight", role="user")) == 1


def test_llm_without_upstream_raises() -> None:
    g = guard(method="llm", judge_model="judge")
    with pytest.raises(RuntimeError, match="upstream"):
        scan(g, "Book a flight")


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"method": "llm"}, "judge_model"),
        ({"topics": []}, "at least 1"),
        ({"colour": "red"}, "Extra inputs"),
        ({"topics": [{"name": "x", "description": "d", "tags": []}]}, "Extra inputs"),
        ({"topics": [TRAVEL, TRAVEL]}, "unique"),
        ({"method": "keywords", "topics": [{"name": "x", "description": "d"}]}, "keywords for every topic"),
        ({"threshold": 1.5}, "less than or equal"),
        ({"topics": [{"name": "x", "description": "d", "examples": [" "]}]}, "empty"),
    ],
)
def test_config_validation(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        TopicsConfig(**{"topics": [TRAVEL], **settings})


def test_window_runs_and_sentence_units() -> None:
    from guardproxy.guards.topics.windows import MAX_SENTENCES, sentence_units, window_runs

    assert window_runs(3, 2) == [(0, 0), (1, 1), (2, 2), (0, 1), (1, 2)]
    assert window_runs(1, 2) == [] and window_runs(4, 0) == []
    assert window_runs(3, 5) == [(0, 0), (1, 1), (2, 2), (0, 1), (1, 2)]  # never all units: that is the whole
    long = " ".join(f"Sentence number {i}." for i in range(MAX_SENTENCES * 2 + 1))
    units = sentence_units(long)
    assert len(units) <= MAX_SENTENCES and units[0][0] == 0 and units[-1][1] == len(long)


def test_compose_is_the_length_weighted_mean_renormalised() -> None:
    import numpy as np

    from guardproxy.guards.topics.semantic import compose

    vectors = np.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]], dtype=np.float32)
    composed = compose(vectors, [3, 1, 1], [(0, 1), (2, 2), (0, 2)])
    expected_first = np.array([3.0, 1.0]) / np.linalg.norm([3.0, 1.0])
    assert np.allclose(composed[0], expected_first, atol=1e-6)
    assert np.allclose(composed[1], vectors[2], atol=1e-6)
    assert np.allclose(np.linalg.norm(composed, axis=1), 1.0, atol=1e-6)


@pytest.mark.parametrize("mode", ["composed", "encoded"])
def test_both_window_embeddings_find_the_banned_sentence_and_agree_on_single_sentences(mode: str) -> None:
    filler = "The tests are slow and the CI queue is long. My manager wants a report by Thursday. "
    text = filler + "Also, book me a flight to Rome next Friday. " + filler
    [finding] = scan(guard(keyword_boost=0, window_embedding=mode), text)
    assert finding.label == "travel" and "flight to Rome" in text[finding.start : finding.end]  # type: ignore[index]
    single = "Which hotels near the beach in Nice have rooms this weekend?"
    assert scan(guard(threshold=0.0, keyword_boost=0, window_embedding=mode), single)[0].score == pytest.approx(
        scan(guard(threshold=0.0, keyword_boost=0, window_embedding="encoded"), single)[0].score, abs=1e-4)


def test_composed_windows_embed_only_the_sentences(embedded: list[str]) -> None:
    seen = embedded
    g = guard(keyword_boost=0)
    g.warm()
    seen.clear()
    scan(g, "Hi there. Book a flight to Rome! Thanks a lot.")
    assert seen == ["Hi there.", "Book a flight to Rome!", "Thanks a lot."]
