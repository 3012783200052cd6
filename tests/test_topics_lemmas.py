"""guardproxy/guards/topics/lemmas.py: texts that cannot hold a keyword skip tagging, and nothing is missed."""

from __future__ import annotations

from typing import Any

import pytest

from guardproxy.guards.pii.analyzer import shared_nlp_engine
from guardproxy.guards.topics.lemmas import LemmaMatcher


@pytest.fixture(scope="module")
def nlp() -> Any:
    return shared_nlp_engine("ner", "en").nlp["en"]  # type: ignore[attr-defined]


def found(matcher: LemmaMatcher, text: str) -> list[str]:
    return [text[hit.start:hit.end] for hit in matcher.find([text])[0]]


def test_inflections_and_irregular_forms_still_match(nlp: Any) -> None:
    matcher = LemmaMatcher(nlp, [("pets", "mouse"), ("medicine", "prescribe"), ("medicine", "dose"),
                                 ("travel", "book flight")])
    assert found(matcher, "The mice were prescribed a dose.") == ["mice", "prescribed", "dose"]
    assert found(matcher, "She was booking flights and PRESCRIBING it.") == ["booking flights", "PRESCRIBING"]
    assert found(matcher, "An embankment on the prescription dosage page.") == []


def test_texts_without_a_possible_keyword_are_not_tagged(nlp: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    matcher = LemmaMatcher(nlp, [("travel", "flight"), ("travel", "hotel")])
    tagged: list[str] = []
    original = nlp.pipe

    def spy(texts: Any, **kwargs: Any) -> Any:
        texts = list(texts)
        tagged.extend(str(doc) for doc in texts)
        return original(texts, **kwargs)

    monkeypatch.setattr(nlp, "pipe", spy)
    hits = matcher.find(["How do I sort a list in Python?", "Two flights and a Hotel, please."])
    assert [[(h.topic, h.start, h.end) for h in text_hits] for text_hits in hits] == [
        [], [("travel", 4, 11), ("travel", 18, 23)]]
    assert tagged == ["Two flights and a Hotel, please."]


def test_keywords_the_attribute_ruler_can_set_always_tag(nlp: Any) -> None:
    # "go" is set as a lemma by rule ("gon na"), not by the lemmatizer: no token can be ruled out.
    matcher = LemmaMatcher(nlp, [("travel", "go")])
    assert matcher._possible is None
    assert found(matcher, "We went there and are gonna go again.") == ["went", "gon", "go"]


def test_only_the_pieces_around_candidates_are_tagged_and_the_hits_are_those_of_the_whole_text(
        nlp: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from guardproxy.guards.topics.lemmas import _TAG_MARGIN, _UNUSED_PIPES

    matcher = LemmaMatcher(nlp, [("travel", "book flight"), ("travel", "hotel"), ("banking", "withdraw")])
    filler = "The quarterly report needs another careful pass before the team sends it out. " * 8
    text = "Booking flights is tiring. " + filler + "We withdrew cash near the hotels. " + filler + "Book flight"
    whole = [(h.topic, text[h.start:h.end]) for h in matcher._find_in(next(nlp.pipe([text],
                                                                                   disable=list(_UNUSED_PIPES))))]
    tagged: list[str] = []
    original = nlp.pipe

    def spy(texts: Any, **kwargs: Any) -> Any:
        texts = list(texts)
        tagged.extend(texts)
        return original(texts, **kwargs)

    monkeypatch.setattr(nlp, "pipe", spy)
    assert [(h.topic, text[h.start:h.end]) for h in matcher.find([text])[0]] == whole == [
        ("travel", "Booking flights"), ("banking", "withdrew"), ("travel", "hotels"), ("travel", "Book flight")]
    assert len(tagged) == 3 and all(piece in text for piece in tagged)
    assert sum(len(nlp.make_doc(piece)) for piece in tagged) < len(nlp.make_doc(text)) // 2
    assert all(len(nlp.make_doc(piece)) <= 3 * _TAG_MARGIN + 4 for piece in tagged)


# Past spaCy's limit (nlp.max_length, 1,000,000 characters): mostly spaces, so few tokens and a quick test.
LONG_FILLER = "All reviewed." + " " * 1000


@pytest.mark.parametrize("keyword", ["flight", "go"])  # "go" tags every piece of the text (no candidate check)
def test_a_text_past_spacys_limit_is_read_in_pieces(nlp: Any, keyword: str) -> None:
    matcher = LemmaMatcher(nlp, [("travel", keyword)])
    text = f"We {keyword} today. " + LONG_FILLER * 1100 + f"One more {keyword} tomorrow."
    assert len(text) > nlp.max_length
    hits = matcher.find([text])[0]
    assert [(text[h.start:h.end], h.start) for h in hits] == [(keyword, 3), (keyword, len(text) - 10 - len(keyword))]


def test_the_topics_guard_scans_a_text_past_spacys_limit() -> None:
    from guardproxy.guards.base import GuardContext, Segment
    from guardproxy.guards.topics.config import TopicsConfig
    from guardproxy.guards.topics.guard import TopicsGuard

    travel = {"name": "travel", "description": "Travel: flights and hotels.", "keywords": ["flight"]}
    text = LONG_FILLER * 1100 + "Book me a flight to Rome next Friday."
    for method in ("keywords", "semantic"):
        guard = TopicsGuard(TopicsConfig(topics=[travel], method=method, threshold=0.0))  # type: ignore[arg-type]
        findings = guard.scan([Segment(text)], GuardContext("input"))
        assert findings and all(f.label == "travel" for f in findings)
        if method == "keywords":
            assert [text[f.start:f.end] for f in findings if f.start is not None] == ["flight"]
