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
