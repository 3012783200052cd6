"""Phone numbers in the layouts people write, scored by layout and by the cue words around them."""

from __future__ import annotations

import phonenumbers
import regex
from presidio_analyzer import RecognizerResult
from presidio_analyzer.nlp_engine import NlpArtifacts

from guardproxy.guards.pii.recognizers.addresses import find_addresses
from guardproxy.guards.pii.recognizers.base import Recognizer, cued

_PHONE = regex.compile(
    r"(?<![\w+/.:-])(?:\+\d{1,3}[ .-]?)?(?:\(0\)[ .-]?)?(?:\(\d{1,5}\)[ .-]?)?\d{1,12}+(?:[ .-]{1,2}\d{1,8}+){0,5}+"
    r"(?:[ ]?(?:x|ext\.?|extension|#)[ ]?\d{1,6})?(?![\w/@]|[.:-]\d)")
_PHONE_CUE = regex.compile(
    r"(?i:phone|tel\b|telephone|mobile|cell|fax|call|office|desk|home|work|contact|reach|dial|text|whatsapp|"
    r"answering|landline|hotline|ring|message|sms|voicemail)")
_DATE = regex.compile(r"\d{4}([.-])\d{1,2}\1\d{1,2}|\d{1,2}([.-])\d{1,2}\2\d{4}")
_DOTTED_QUAD = regex.compile(r"\d{1,3}(?:\.\d{1,3}){3}")
_NANP = regex.compile(r"(?:\+?1[ .-]?)?(?:\(\d{3}\)[ ]?|\d{3}[ .-])\d{3}[ .-]\d{4}")
_EXTENSION = regex.compile(r"(?i:[ ]?(?:x|ext\.?|extension|#)[ ]?\d{1,6})$")


class PhoneNumberRecognizer(Recognizer):
    """Phone numbers in the layouts people write, not only those ``phonenumbers`` validates for a few
    regions: international (+44 20 7946 0958, +41 (0)62 ...), parenthesised area codes, dotted, grouped
    digits (71-33-52-22) and extensions (x0135). Bare digit groups count only next to a cue word."""

    ENTITIES = ["PHONE_NUMBER"]

    def analyze(self, text: str, entities: list[str], nlp_artifacts: NlpArtifacts | None = None
                ) -> list[RecognizerResult]:
        results = []
        for match in _PHONE.finditer(text):
            score = self._score(text, match.group(), match.start(), match.end())
            if score > 0:
                results.append(self.result(match.start(), match.end(), score))
        return results

    def _score(self, text: str, number: str, start: int, end: int) -> float:
        extension = _EXTENSION.search(number)
        body = number[: extension.start()] if extension else number
        digits = sum(char.isdigit() for char in body)
        groups = len(regex.findall(r"\d+", body))
        if not 7 <= digits <= 15 or _DATE.fullmatch(body) or _DOTTED_QUAD.fullmatch(body):
            return 0.0
        if groups == 1 and digits > 11:
            return 0.0  # a long unbroken run is a card, account or id number
        is_cued = cued(_PHONE_CUE, text, start, end)
        if body.startswith("+"):
            score = 0.7 if _possible_international(body) else 0.4
        elif "(" in body or _NANP.fullmatch(body):
            score = 0.6
        elif regex.fullmatch(r"\d{3,4}-\d{2}-\d{4}", body):
            return 0.0  # the SSN layout (and licence numbers like it): the SSN recognizer's call
        else:
            score = 0.3
            if groups == 1 and not is_cued:
                return 0.0
            if any(start < a_end and a_start < end for a_start, a_end, _ in find_addresses(text)):
                return 0.0  # house and street numbers ("3536 1659 Hoog St")
        return score + (0.1 if extension else 0.0) + (0.3 if is_cued else 0.0)


def _possible_international(number: str) -> bool:
    try:
        return bool(phonenumbers.is_possible_number(phonenumbers.parse(number.replace("(0)", ""), None)))
    except phonenumbers.NumberParseException:
        return False
