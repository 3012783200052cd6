"""spaCy keeps every new token string for good; the PII guard's analysis runs in a memory zone
(``spacy_docs.transient_strings``) so a long-running proxy does not grow with every new word
(found by ``benchmarks/soak.py``)."""

from __future__ import annotations

from guardproxy.guards.pii.analyzer import build_analyzer
from guardproxy.guards.pii.detection import analyze_batch
from guardproxy.guards.pii.recognizers import DEFAULT_ENTITIES, quality_recognizers
from guardproxy.guards.spacy_docs import shared_doc, transient_strings


def test_pii_analysis_leaves_the_vocabulary_as_it_found_it() -> None:
    analyzer = build_analyzer("ner", "en", *quality_recognizers("en"))
    nlp = analyzer.nlp_engine.nlp["en"]  # type: ignore[attr-defined]
    texts = [f"Order zq{i}x7 for Maria Gonzalez-{i}, mail m{i}.k@example.org" for i in range(40)]
    analyze_batch(analyzer, texts[:2], "en", DEFAULT_ENTITIES, 0.4)  # warm: what every text shares
    strings_before = len(nlp.vocab.strings)  # len(nlp.vocab) counts zone lexemes too, though their memory is freed
    found = analyze_batch(analyzer, texts, "en", DEFAULT_ENTITIES, 0.4)
    assert all(any(d.entity == "EMAIL_ADDRESS" for d in detections) for detections in found)
    assert all(any(d.entity == "PERSON" for d in detections) for detections in found)
    assert len(nlp.vocab.strings) == strings_before
    nlp.make_doc("zq1x7 and zq2x7")  # outside a zone spaCy keeps new strings: the check above can fail
    assert len(nlp.vocab.strings) > strings_before


def test_docs_made_in_a_zone_are_not_shared_and_zones_nest() -> None:
    analyzer = build_analyzer("ner", "en", *quality_recognizers("en"))
    nlp = analyzer.nlp_engine.nlp["en"]  # type: ignore[attr-defined]
    with transient_strings(nlp):
        first = shared_doc(nlp, "qqxv-17 once")
        with transient_strings(nlp):  # the same thread again: no second zone
            assert shared_doc(nlp, "qqxv-17 once") is not first
    outside = shared_doc(nlp, "qqxv-17 once")
    assert shared_doc(nlp, "qqxv-17 once") is outside  # cached again once outside any zone
