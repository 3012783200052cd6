"""The guard author's module (guardproxy/guards/api.py) and the tokenized spaCy documents guards share."""

from __future__ import annotations

from typing import Any

import guardproxy.guards.api as api
from guardproxy.guards.pii.analyzer import shared_nlp_engine
from guardproxy.guards.spacy_docs import SharedDocs, shared_doc
from guardproxy.guards.topics.lemmas import LemmaMatcher


def test_the_contract_and_the_shared_helpers_are_in_one_module() -> None:
    for name in ["Guard", "GuardConfig", "GuardContext", "GuardKind", "Segment", "Finding", "GuardType",
                 "UpstreamClient", "UpstreamCallError", "validate_regex", "raise_if_abandoned", "ScanAbandoned",
                 "shared_encoder", "CachedEncoder", "shared_doc", "REGISTRY"]:
        assert name in api.__all__ and hasattr(api, name), name
    assert set(api.__all__) == {name for name in dir(api) if not name.startswith("_") and name != "annotations"}


class CountingPipeline:
    """Stands in for a spaCy ``Language``: counts the texts it tokenizes."""

    def __init__(self) -> None:
        self.tokenized: list[str] = []

    def make_doc(self, text: str) -> Any:
        self.tokenized.append(text)
        return object()


def test_one_document_per_pipeline_and_text() -> None:
    docs = SharedDocs(max_docs=8, max_chars=1000)
    first, second = CountingPipeline(), CountingPipeline()
    doc = docs.tokenized(first, "Jane flies to Paris.")  # type: ignore[arg-type]
    assert docs.tokenized(first, "Jane flies to Paris.") is doc  # type: ignore[arg-type]
    assert docs.tokenized(second, "Jane flies to Paris.") is not doc  # type: ignore[arg-type]  # another pipeline
    assert first.tokenized == second.tokenized == ["Jane flies to Paris."]


def test_the_cache_is_bounded_by_documents_and_characters() -> None:
    nlp = CountingPipeline()
    docs = SharedDocs(max_docs=3, max_chars=100)
    for text in ["a", "b", "c", "d"]:
        docs.tokenized(nlp, text)  # type: ignore[arg-type]
    assert len(docs) == 3
    docs.tokenized(nlp, "a")  # type: ignore[arg-type]  # pushed out: tokenized again
    assert nlp.tokenized == ["a", "b", "c", "d", "a"]
    docs.tokenized(nlp, "x" * 99)  # type: ignore[arg-type]
    assert len(docs) == 2  # "a" and the 99 characters: "c" and "d" made room
    docs.tokenized(nlp, "y" * 101)  # type: ignore[arg-type]  # longer than the whole cache: never kept
    docs.tokenized(nlp, "y" * 101)  # type: ignore[arg-type]
    assert nlp.tokenized[-2:] == ["y" * 101] * 2 and len(docs) == 2


def test_pii_and_topic_keywords_tokenize_a_text_once() -> None:
    engine = shared_nlp_engine("ner", "en")
    nlp = engine.nlp["en"]  # type: ignore[attr-defined]
    text = "Maria Gonzalez asked how to open a bank account on her flight to Madrid next week."
    artifacts = engine.process_text(text, "en")
    assert artifacts.tokens is shared_doc(nlp, text)
    assert [e.label_ for e in artifacts.entities] == ["PERSON", "LOCATION", "DATE_TIME"]  # as Presidio names them
    hits = LemmaMatcher(nlp, [("banking", "bank account"), ("travel", "flights")]).find([text])
    assert [(hit.topic, text[hit.start:hit.end]) for hit in hits[0]] == [("banking", "bank account"),
                                                                         ("travel", "flight")]
    assert shared_doc(nlp, text) is artifacts.tokens
    assert [e.label_ for e in artifacts.tokens.ents] == ["PERSON", "GPE", "DATE"]  # NER ran on the shared document
