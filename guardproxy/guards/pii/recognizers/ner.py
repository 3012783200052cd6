"""The NER model's entities, corrected by what the text around them shows."""

from __future__ import annotations

from collections.abc import Iterator

import regex
from presidio_analyzer import RecognizerResult
from presidio_analyzer.nlp_engine import NlpArtifacts
from presidio_analyzer.predefined_recognizers import SpacyRecognizer
from spacy.tokens import Span

from guardproxy.guards.pii.nlp import tagged_tokens
from guardproxy.guards.pii.recognizers.addresses import find_addresses
from guardproxy.guards.pii.recognizers.base import Recognizer, names_wanted
from guardproxy.guards.pii.recognizers.mentions import list_members, repeats, speakers
from guardproxy.guards.pii.recognizers.names import find_cued_names
from guardproxy.guards.pii.recognizers.vocabulary import ORG_WORD

_MENTION_SCORE = 0.6  # another mention of a found person: as sure as the cue phrases


class ContextualNerRecognizer(Recognizer):
    """The NER model's entities (what Presidio's spaCy recognizer reports, which this replaces), with
    PERSON and LOCATION corrected by what the text around them shows.

    Drops names inside a street address (the small model calls "Kishiev Squares" a person), with
    digits, "@" or "/", or followed by an organisation word ("Davis Orchestra"). Adds the other
    mentions of the people found (see ``mentions``), and in all-lower-case text the names the
    model finds once the words it tags as proper nouns are capitalised (its NER is case-sensitive).
    Without an NLP model (pattern mode) it reports nothing.
    """

    ENTITIES = list(SpacyRecognizer.ENTITIES)

    def analyze(self, text: str, entities: list[str], nlp_artifacts: NlpArtifacts | None = None
                ) -> list[RecognizerResult]:
        if nlp_artifacts is None or not names_wanted(nlp_artifacts):
            return []
        addresses = [(start, end) for start, end, _ in find_addresses(text)]
        kept: list[RecognizerResult] = []
        found = list(zip(nlp_artifacts.entities, nlp_artifacts.scores, strict=False))
        found += [(entity, score) for entity, score in _recased_people(text, nlp_artifacts, self.supported_language)
                  if not any(entity.start_char < e.end_char and e.start_char < entity.end_char for e, _ in found)]
        for entity, score in found:
            start, end, label = entity.start_char, entity.end_char, entity.label_
            if label not in entities or label not in self.supported_entities:
                continue
            if label in ("PERSON", "LOCATION") and (
                    regex.search(r"[\d@/]", text[start:end]) or ORG_WORD.search(text[start:end + 15])
                    or (label == "PERSON" and any(start < e and s < end for s, e in addresses))):
                continue
            kept.append(self.result(start, end, score, label))
        if "PERSON" not in entities:
            return kept
        people = [(r.start, r.end) for r in kept if r.entity_type == "PERSON"]
        people += [(start, end) for start, end, _ in find_cued_names(text)]
        more = list(list_members(text, people))
        more += speakers(text, people + more)
        more += repeats(text, people + more, addresses)
        return kept + [self.result(start, end, _MENTION_SCORE, "PERSON") for start, end in dict.fromkeys(more)]


def _recased_people(text: str, nlp_artifacts: NlpArtifacts, language: str) -> Iterator[tuple[Span, float]]:
    """PERSON entities of an all-lower-case ``text`` once its proper nouns are capitalised."""
    engine = nlp_artifacts.nlp_engine
    if engine is None or regex.search(r"\p{Lu}", regex.sub(r"\bI\b", "", text)):
        return
    chars = list(text)
    for token in tagged_tokens(nlp_artifacts):
        first = chars[token.idx]
        if token.pos_ == "PROPN" and len(first.upper()) == 1:
            chars[token.idx] = first.upper()
    recased = "".join(chars)
    if recased == text:
        return
    again = engine.process_text(recased, language)
    for entity, score in zip(again.entities, again.scores, strict=False):
        if entity.label_ == "PERSON":
            yield entity, score
