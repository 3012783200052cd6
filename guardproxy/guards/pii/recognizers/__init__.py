"""Recognizers that close the gaps of Presidio's predefined set on everyday PII shapes.

Stock Presidio with the small spaCy model finds about half of the personal data in
free text: it has no street-address recognizer, scores most phone numbers 0.4
(dropped at any threshold of 0.5), knows only five card prefixes, and the NER model
misses names in lower case, after titles or in address blocks, while calling street
names "PERSON". Everything here is a general pattern (street-type words from postal
standards, phone layouts, card number ranges, English cue phrases); no list of names
or places is shipped, so nothing depends on the data it was measured on. ``rampart`` adds a
vendored token classifier's names and places (``guardproxy.guards.pii.rampart``).

One module per kind of finding: ``addresses``, ``phones``, ``cards``, ``names`` (cue
phrases), ``places`` (cue phrases) and ``ner`` (the NER model's entities, refined, plus the
other ``mentions`` of the people found); ``vocabulary`` holds the English word classes they share.
No recognizer touches the network, and none needs the NER model except
``ContextualNerRecognizer`` (which only refines what the model already found).
"""

from __future__ import annotations

from presidio_analyzer import EntityRecognizer

from guardproxy.guards.pii.defaults import (
    DEFAULT_ENTITIES,
    DEFAULT_ENTITY_THRESHOLDS,
    DEFAULT_NAMES_MODEL,
    DEFAULT_SCORE_THRESHOLD,
    NamesModel,
)
from guardproxy.guards.pii.recognizers.addresses import StreetAddressRecognizer, find_addresses
from guardproxy.guards.pii.recognizers.cards import CardNumberRecognizer
from guardproxy.guards.pii.recognizers.names import PersonCueRecognizer
from guardproxy.guards.pii.recognizers.ner import ContextualNerRecognizer
from guardproxy.guards.pii.recognizers.phones import PhoneNumberRecognizer
from guardproxy.guards.pii.recognizers.places import PlaceCueRecognizer
from guardproxy.guards.pii.recognizers.rampart import RampartRecognizer

__all__ = [
    "DEFAULT_ENTITIES", "DEFAULT_ENTITY_THRESHOLDS", "DEFAULT_SCORE_THRESHOLD", "CardNumberRecognizer",
    "ContextualNerRecognizer", "PersonCueRecognizer", "PhoneNumberRecognizer", "PlaceCueRecognizer",
    "RampartRecognizer", "StreetAddressRecognizer", "find_addresses", "quality_recognizers",
]


def quality_recognizers(language: str, names_model: NamesModel = DEFAULT_NAMES_MODEL
                        ) -> tuple[list[EntityRecognizer], list[str]]:
    """The recognizers to add to ``build_analyzer`` and the predefined ones they replace.

    The NER refinement replaces Presidio's spaCy recognizer; in pattern mode there are no NER
    entities, so it finds nothing and costs nothing. ``names_model: rampart`` adds the names and
    places of the Rampart token classifier to spaCy's (also nothing in pattern mode).
    """
    extra: list[EntityRecognizer] = [
        StreetAddressRecognizer(language), PhoneNumberRecognizer(language), CardNumberRecognizer(language),
        PersonCueRecognizer(language), PlaceCueRecognizer(language), ContextualNerRecognizer(language),
    ]
    if names_model == "rampart":
        extra.append(RampartRecognizer(language))
    return extra, ["PhoneRecognizer", "CreditCardRecognizer", "SpacyRecognizer"]
