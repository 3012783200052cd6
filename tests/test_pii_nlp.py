"""The PII guard's lazy spaCy pipeline gives what Presidio's full pipeline (without the parser) gives."""

from __future__ import annotations

import pytest
from presidio_analyzer import AnalyzerEngine
from presidio_analyzer.nlp_engine import NlpArtifacts

from guardproxy.guards.pii.analyzer import build_analyzer, shared_nlp_engine
from guardproxy.guards.pii.nlp import LazyNlpArtifacts, PiiNlpEngine
from guardproxy.guards.pii.recognizers import DEFAULT_ENTITIES, quality_recognizers

TEXTS = [
    "Hi, I'm Wanda Okonkwo. Write to wanda.okonkwo@example.org or call 020 7946 0321 after 10:30.",
    "my checking account is 004512378 and my social security number: 078-05-1120, she said it was hers",
    "Ratios like 3:1 and links such as https://example.com/a:b, re:the plan, be:it; ok :) (: done.",
    "The servers at 192.168.14.7 and 10.0.0.1 were rebooted. Later, Tomasz Wójcik asked again " * 3,
    "ok so i talked to mike yesterday and he said the deadline is friday",
]


@pytest.fixture(scope="module")
def engine() -> PiiNlpEngine:
    loaded = shared_nlp_engine("ner", "en")
    assert isinstance(loaded, PiiNlpEngine)
    return loaded


def full_pipeline(engine: PiiNlpEngine, text: str) -> NlpArtifacts:
    """What Presidio's own engine computes, minus the parser the PII guard never runs."""
    nlp = engine.nlp["en"]  # type: ignore[index]
    with nlp.select_pipes(disable=["parser"]):
        doc = nlp(text)
    entities, scores = engine._get_updated_entities(list(doc.ents), engine._get_scores_for_entities(doc))
    return NlpArtifacts(entities=entities, tokens=doc, tokens_indices=[t.idx for t in doc],
                        lemmas=[t.lemma_ for t in doc], nlp_engine=engine, language="en", scores=scores)


@pytest.mark.parametrize("text", TEXTS)
def test_lazy_artifacts_match_the_full_pipeline(engine: PiiNlpEngine, text: str) -> None:
    expected = full_pipeline(engine, text)
    lazy = engine.process_text(text, "en")
    assert isinstance(lazy, LazyNlpArtifacts)
    # Read back to front, as Presidio walks from a match, so lemmas come in several slices.
    lemmas = [lazy.lemmas[i] for i in reversed(range(len(lazy.lemmas)))][::-1]
    assert lemmas == expected.lemmas
    for word in {lemma.lower() for lemma in expected.lemmas}:
        assert (word in lazy.keywords) == (word in expected.keywords), word
    assert list(lazy.keywords) == expected.keywords
    assert [(e.start_char, e.end_char, e.label_) for e in lazy.entities] == [
        (e.start_char, e.end_char, e.label_) for e in expected.entities]
    assert lazy.scores == expected.scores


def test_lemmas_are_computed_only_where_asked(engine: PiiNlpEngine) -> None:
    text = TEXTS[3]
    lazy = engine.process_text(text, "en")
    assert isinstance(lazy, LazyNlpArtifacts)
    lazy.prefetch_context([text.index("10.0.0.1")])
    known = [lemma is not None for lemma in lazy._lemmas._known]
    assert any(known) and not all(known)


def analyzers(engine: PiiNlpEngine) -> tuple[AnalyzerEngine, AnalyzerEngine]:
    """Ours, and one with Presidio's own context enhancer on fully computed artifacts."""
    ours = build_analyzer("ner", "en", *quality_recognizers("en"))
    stock = AnalyzerEngine(registry=ours.registry, nlp_engine=engine, supported_languages=["en"])
    return ours, stock


@pytest.mark.parametrize("text", TEXTS)
def test_context_scores_match_presidio(engine: PiiNlpEngine, text: str) -> None:
    ours, stock = analyzers(engine)
    expected = stock.analyze(text, "en", DEFAULT_ENTITIES, score_threshold=0.0,
                             nlp_artifacts=full_pipeline(engine, text))
    found = ours.analyze(text, "en", DEFAULT_ENTITIES, score_threshold=0.0)
    as_tuples = sorted((r.entity_type, r.start, r.end, r.score) for r in found)
    assert as_tuples == sorted((r.entity_type, r.start, r.end, r.score) for r in expected)


def test_context_words_still_raise_scores(engine: PiiNlpEngine) -> None:
    ours, _ = analyzers(engine)
    text = TEXTS[1]
    found = {text[r.start:r.end]: r.score for r in ours.analyze(text, "en", ["US_BANK_NUMBER"], score_threshold=0.0)}
    assert found["004512378"] >= 0.4  # 0.05 for the digits alone, raised by "account" before them
