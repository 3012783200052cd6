"""guardproxy/guards/grounding/signals.py: texts longer than spaCy takes at once are analysed in pieces."""

from __future__ import annotations

import pytest

from guardproxy.embeddings import CachedEncoder, shared_encoder
from guardproxy.guards.grounding import signals
from guardproxy.guards.grounding.config import GroundingConfig
from guardproxy.guards.grounding.guard import GroundingGuard
from guardproxy.guards.grounding.nli import load_head
from guardproxy.guards.grounding.signals import SignalExtractor
from guardproxy.guards.pii.analyzer import shared_nlp_engine

FACT = "The Eiffel Tower in Paris is 330 metres tall."
# Past spaCy's limit (nlp.max_length, 1,000,000 characters): mostly spaces, so few tokens and a quick test.
LONG_FILLER = "All reviewed." + " " * 1000


@pytest.fixture(scope="module")
def extractor() -> SignalExtractor:
    nlp = shared_nlp_engine("ner", "en").nlp["en"]  # type: ignore[attr-defined]
    return SignalExtractor(nlp, CachedEncoder(shared_encoder(), 0), 0, load_head())


def test_a_context_past_spacys_limit_is_read_to_its_end(extractor: SignalExtractor) -> None:
    context = LONG_FILLER * 1100 + FACT
    assert len(context) > extractor._nlp.max_length
    [found] = extractor.signals([FACT], extractor.context_index([context]))
    assert found.lexical_missing == 0 and found.facts_missing == 0


def test_pieces_joined_give_the_document_of_the_whole_text(extractor: SignalExtractor,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    text = "Gustave Eiffel's company built it in 1889. " + FACT + " About seven million people visit it every year."
    whole = extractor._docs([text])[0]
    monkeypatch.setattr(signals, "PIECE_CHARS", 50)
    [joined] = extractor._docs([text])
    assert joined.text == text
    assert [(e.text, e.start_char, e.label_) for e in joined.ents] == [
        (e.text, e.start_char, e.label_) for e in whole.ents]
    assert [t.lemma_ for t in joined] == [t.lemma_ for t in whole]


def test_the_guard_scores_an_answer_past_spacys_limit() -> None:
    guard = GroundingGuard(GroundingConfig())
    answer = "Paris is" + (" " * 1000 + "tall") * 1100  # no sentence end: one claim of 1.1 million characters
    [(claim, score)] = guard.claim_scores(answer, [FACT])
    assert (claim.start, claim.end) == (0, len(answer)) and 0 <= score <= 1


def test_entailment_support_prefers_a_paraphrase_to_a_negation(extractor: SignalExtractor) -> None:
    context = ("Gustave Eiffel's company built it for the 1889 World's Fair. " + FACT
               + " About seven million people visit it every year.")
    paraphrase, negated = extractor.signals(["The Eiffel Tower is 330 metres tall.",
                                             "The Eiffel Tower in Paris is not 330 metres tall."],
                                            extractor.context_index([context]))
    assert 0 <= negated.entailment_support < 0.5 < paraphrase.entailment_support <= 1


def test_entailment_support_is_zero_without_context_sentences(extractor: SignalExtractor) -> None:
    [found] = extractor.signals(["The Eiffel Tower is 330 metres tall."], extractor.context_index([" "]))
    assert found.entailment_support == 0
