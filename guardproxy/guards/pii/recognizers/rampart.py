"""Names and places tagged by the Rampart token classifier (``guardproxy.guards.pii.rampart``)."""

from __future__ import annotations

from presidio_analyzer import RecognizerResult
from presidio_analyzer.nlp_engine import NlpArtifacts

from guardproxy.guards.pii.rampart import RampartTagger, shared_tagger
from guardproxy.guards.pii.recognizers.base import Recognizer, names_wanted


class RampartRecognizer(Recognizer):
    """PERSON and LOCATION spans from the Rampart model, scored with its probability.

    It complements the spaCy NER (``ContextualNerRecognizer``): the guard keeps the union of both.
    The model is loaded on the first text this recognizer reads (the guard's warm-up), once per
    process. In pattern mode it reports nothing and is never loaded.
    """

    ENTITIES = ["PERSON", "LOCATION"]

    def __init__(self, language: str = "en") -> None:
        super().__init__(language)
        self._tagger: RampartTagger | None = None

    def analyze(self, text: str, entities: list[str], nlp_artifacts: NlpArtifacts | None = None
                ) -> list[RecognizerResult]:
        if nlp_artifacts is None or not names_wanted(nlp_artifacts):
            return []
        wanted = [e for e in self.supported_entities if e in entities]
        if not wanted:
            return []
        if self._tagger is None:
            self._tagger = shared_tagger()
        return [self.result(span.start, span.end, span.score, span.entity)
                for span in self._tagger.tag(text) if span.entity in wanted]
