"""What every recognizer in this package shares: no model to load, its own name on each result,
and cue words searched on the same line of a form."""

from __future__ import annotations

from typing import ClassVar

import regex
from presidio_analyzer import EntityRecognizer, RecognizerResult
from presidio_analyzer.nlp_engine import NlpArtifacts, NoOpNlpEngine

CONTEXT_WINDOW = 40  # characters before a match searched for cue words: about the same line of a form


class Recognizer(EntityRecognizer):
    """A recognizer that needs no model, reports its own name, and scores its own context."""

    ENTITIES: ClassVar[list[str]]

    def __init__(self, language: str = "en") -> None:
        self.recognizer_name = type(self).__name__
        super().__init__(supported_entities=list(self.ENTITIES), name=self.recognizer_name,
                         supported_language=language)

    def load(self) -> None:
        return None

    def result(self, start: int, end: int, score: float, entity: str | None = None) -> RecognizerResult:
        return RecognizerResult(entity or self.supported_entities[0], start, end, min(score, 1.0),
                                recognition_metadata={RecognizerResult.RECOGNIZER_NAME_KEY: self.recognizer_name,
                                                      RecognizerResult.RECOGNIZER_IDENTIFIER_KEY: self.id})


def names_wanted(nlp_artifacts: NlpArtifacts | None) -> bool:
    """Pattern mode (the no-op NLP engine) promises structured identifiers only, no names or places;
    the cue recognizers keep that promise although they need no model."""
    return nlp_artifacts is None or not isinstance(nlp_artifacts.nlp_engine, NoOpNlpEngine)


def cued(cue: regex.Pattern[str], text: str, start: int, end: int, after: int = 12) -> bool:
    """A cue word just before the match (same form line) or right after it ("416 60 039 office")."""
    return bool(cue.search(text, max(0, start - CONTEXT_WINDOW), start)
                or (after and regex.match(rf"[\s,;:-]*(?:{cue.pattern})", text[end: end + after])))
