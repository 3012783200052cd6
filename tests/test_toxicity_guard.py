"""guardproxy/guards/toxicity/guard.py: windows, batching, min_chars, allow list, threshold."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest
from pydantic import ValidationError

from guardproxy.guards import REGISTRY, GuardContext, Segment
from guardproxy.guards.toxicity.config import (
    DEFAULT_THRESHOLD_COMBINED,
    DEFAULT_THRESHOLD_MODERATION,
    DEFAULT_THRESHOLD_PROFANITY,
    ToxicityConfig,
)
from guardproxy.guards.toxicity.guard import ToxicityGuard
from guardproxy.guards.toxicity.profanity import ProfanityScorer

CONTEXT = GuardContext("output")
POLITE = ("Thank you for reaching out about your order. We have checked the shipment and it left our warehouse "
          "on Monday morning. The tracking number should be active within a day. ")
TOXIC = "You are a fucking idiot and everyone hates you."


@pytest.fixture(scope="module")
def guard() -> ToxicityGuard:
    instance = ToxicityGuard(ToxicityConfig())
    instance.warm()
    return instance


@pytest.fixture(scope="module")
def profanity_guard() -> ToxicityGuard:
    return ToxicityGuard(ToxicityConfig(implicit=False))


class CountingScorer(ProfanityScorer):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[list[str]] = []

    def score(self, texts: Sequence[str]) -> np.ndarray:
        self.calls.append(list(texts))
        return super().score(texts)


def test_registered() -> None:
    assert REGISTRY["toxicity"] is ToxicityGuard


def test_a_toxic_sentence_inside_a_long_polite_text_is_caught_with_its_span(guard: ToxicityGuard) -> None:
    text = POLITE + TOXIC + " " + POLITE
    findings = guard.scan([Segment(text)], CONTEXT)
    assert len(findings) == 1
    finding = findings[0]
    assert (finding.start, finding.end) == (len(POLITE), len(POLITE) + len(TOXIC))
    assert finding.label == "toxicity" and finding.segment == 0
    assert finding.score >= guard.threshold


def test_the_same_sentence_is_missed_when_the_long_text_is_scored_whole(profanity_guard: ToxicityGuard) -> None:
    """Why windows matter: the whole text dilutes the one toxic sentence below the threshold."""
    text = POLITE * 3 + TOXIC + " " + POLITE * 3
    whole = profanity_guard.score([text])[0]
    assert whole < profanity_guard.threshold
    assert profanity_guard.scan([Segment(text)], CONTEXT)


def test_polite_text_passes(guard: ToxicityGuard) -> None:
    assert guard.scan([Segment(POLITE), Segment("How do I sort a list of tuples in Python?")], CONTEXT) == []


def test_all_segments_are_scored_in_one_batch() -> None:
    guard = ToxicityGuard(ToxicityConfig(implicit=False))
    scorer = CountingScorer()
    guard._profanity = scorer
    segments = [Segment(f"Message number {i} is a friendly one.") for i in range(20)] + [Segment(TOXIC)]
    findings = guard.scan(segments, CONTEXT)
    assert len(scorer.calls) == 1
    assert len(scorer.calls[0]) == 21
    assert [f.segment for f in findings] == [20]


def test_segments_shorter_than_min_chars_are_not_scored() -> None:
    guard = ToxicityGuard(ToxicityConfig(implicit=False, min_chars=12))
    scorer = CountingScorer()
    guard._profanity = scorer
    assert guard.scan([Segment("fuck you")], CONTEXT) == []
    assert scorer.calls == []
    assert guard.scan([Segment("fuck you, really")], CONTEXT)


@pytest.mark.parametrize(("allow", "text"), [
    (["Dick Van Dyke"], "Try the Dick Van Dyke show reruns tonight."),
    (["vagina", "vulva"], "The vagina and vulva are examined during the visit."),
])
def test_an_allowed_term_alone_does_not_fire(allow: list[str], text: str) -> None:
    plain = ToxicityGuard(ToxicityConfig(implicit=False))
    allowing = ToxicityGuard(ToxicityConfig(implicit=False, allow=allow))
    assert plain.scan([Segment(text)], CONTEXT), "the premise: the stock model fires on the term"
    assert allowing.scan([Segment(text)], CONTEXT) == []


def test_an_allowed_term_does_not_excuse_other_abuse() -> None:
    allowing = ToxicityGuard(ToxicityConfig(implicit=False, allow=["Dick Van Dyke"]))
    findings = allowing.scan([Segment("Dick Van Dyke fans are fucking morons.")], CONTEXT)
    assert [(f.start, f.end) for f in findings] == [(0, 38)]


def test_threshold_decides(profanity_guard: ToxicityGuard) -> None:
    text = "This is damn annoying, honestly."
    score = float(profanity_guard.score([text])[0])
    below = ToxicityGuard(ToxicityConfig(implicit=False, threshold=min(1.0, score + 0.01)))
    above = ToxicityGuard(ToxicityConfig(implicit=False, threshold=max(0.0, score - 0.01)))
    assert below.scan([Segment(text)], CONTEXT) == []
    assert [f.score for f in above.scan([Segment(text)], CONTEXT)] == [pytest.approx(score, abs=1e-4)]


def test_implicit_head_catches_hate_without_swear_words(guard: ToxicityGuard,
                                                        profanity_guard: ToxicityGuard) -> None:
    text = "Immigrants are a disease that is destroying this country and they should all be sent back."
    assert profanity_guard.scan([Segment(text)], CONTEXT) == []
    assert guard.scan([Segment(text)], CONTEXT)


def test_default_thresholds_follow_the_detector() -> None:
    assert ToxicityConfig().effective_threshold() == DEFAULT_THRESHOLD_COMBINED
    assert ToxicityConfig(implicit=False).effective_threshold() == DEFAULT_THRESHOLD_PROFANITY
    assert ToxicityConfig(detector="moderation").effective_threshold() == DEFAULT_THRESHOLD_MODERATION
    assert ToxicityConfig(threshold=0.9).effective_threshold() == 0.9


@pytest.mark.parametrize("keys", [{"threshold": 1.5}, {"detector": "llm"}, {"allow": [" "]}, {"unknown": 1}])
def test_invalid_keys_are_rejected(keys: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        ToxicityConfig.model_validate(keys)


def test_the_scorer_gives_exactly_what_the_wheels_model_gives() -> None:
    from profanity_check import predict_prob

    texts = ["you are an idiot", "what a lovely day", "I hate all of them, the filthy animals",
             "f*** this s***", "Paris is the capital of France.", "", "shut up you stupid cow"]
    expected = np.asarray(predict_prob(texts), dtype=np.float64)
    assert np.allclose(ProfanityScorer().score(texts), expected, rtol=0, atol=1e-12)
