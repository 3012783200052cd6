"""Context words around a match, scored as Presidio scores them, with only the lemmas that can matter.

Presidio's ``LemmaContextAwareEnhancer`` raises a match's score when a context word of its
recognizer ("email", "iban", "ssn", a policy pattern's ``context``) is among the lemmas of the
words before it. It reads lemmas one match at a time; with ``LazyNlpArtifacts`` that would
tag the text in as many small passes as there are matches.
"""

from __future__ import annotations

from collections.abc import Sequence

from presidio_analyzer import EntityRecognizer, RecognizerResult
from presidio_analyzer.context_aware_enhancers import ContextAwareEnhancer, LemmaContextAwareEnhancer
from presidio_analyzer.nlp_engine import NlpArtifacts

from guardproxy.guards.pii.nlp import LazyNlpArtifacts


class ContextEnhancer(LemmaContextAwareEnhancer):
    """Presidio's lemma enhancer, giving the same scores with less spaCy work:

    - a match already at the top score is left alone: a context word cannot raise it (the
      analysis explanation would name the word, but the guard never asks for explanations);
    - the lemmas before every other match that has context words are computed in one batch.
    """

    def enhance_using_context(
        self, text: str, raw_results: list[RecognizerResult], nlp_artifacts: NlpArtifacts,
        recognizers: list[EntityRecognizer], context: list[str] | None = None,
    ) -> list[RecognizerResult]:
        settled = [result.score == ContextAwareEnhancer.MAX_SCORE for result in raw_results]
        pending = [result for result, done in zip(raw_results, settled, strict=True) if not done]
        if isinstance(nlp_artifacts, LazyNlpArtifacts):
            nlp_artifacts.prefetch_context(_context_starts(pending, recognizers))
        enhanced = iter(super().enhance_using_context(text, pending, nlp_artifacts, recognizers, context))
        return [result if done else next(enhanced) for result, done in zip(raw_results, settled, strict=True)]


def _context_starts(results: Sequence[RecognizerResult], recognizers: Sequence[EntityRecognizer]) -> list[int]:
    """Where the matches start that Presidio will look for context words before."""
    with_context = {recognizer.id for recognizer in recognizers if recognizer.context}
    return [result.start for result in results
            if (result.recognition_metadata or {}).get(RecognizerResult.RECOGNIZER_IDENTIFIER_KEY) in with_context
            and not result.recognition_metadata.get(RecognizerResult.IS_SCORE_ENHANCED_BY_CONTEXT_KEY)]
