"""Payment card numbers: issuer prefix, Luhn checksum and card layouts, with card words as context."""

from __future__ import annotations

import regex
from presidio_analyzer import RecognizerResult
from presidio_analyzer.nlp_engine import NlpArtifacts

from guardproxy.guards.pii.recognizers.base import Recognizer, cued

# Card layouts: unbroken, groups of four (4-4-4-4-3 at most), Amex 4-6-5. Mixed layouts are not one card.
_CARD = regex.compile(r"(?<![\w.-])(?:\d{12,19}|\d{4}(?P<s>[ -])\d{4}(?P=s)\d{4}(?:(?P=s)\d{4}(?:(?P=s)\d{3})?"
                      r"|(?P=s)\d{1,3})?|\d{4}(?P<t>[ -])\d{6}(?P=t)\d{4,5})(?![\w-]|[.,]\d)")
# Issuer prefixes (ISO/IEC 7812 ranges in use): Visa, Mastercard (51-55, 2221-2720), Amex, Discover,
# JCB (incl. the 15-digit 1800/2131), Diners, Maestro/UnionPay (50, 56-69).
_ISSUER = regex.compile(r"4|5[0-9]|2[2-7]|3[0-9]|6[0-9]|1800|2131")
_CARD_CUE = regex.compile(r"(?i:card|\bcc\b|visa|master|amex|maestro|discover|jcb|diners|credit|debit|payment)")


def _luhn(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char) * (2 if index % 2 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0


class CardNumberRecognizer(Recognizer):
    """Payment card numbers of 12-19 digits with a known issuer prefix and a valid Luhn checksum.

    Replaces Presidio's recognizer, which knows only 13-16-digit numbers with five first digits
    (missing Mastercard's 2-series, 15-digit JCB, 12-digit Maestro, 19-digit Visa)."""

    ENTITIES = ["CREDIT_CARD"]

    def analyze(self, text: str, entities: list[str], nlp_artifacts: NlpArtifacts | None = None
                ) -> list[RecognizerResult]:
        results = []
        for match in _CARD.finditer(text):
            digits = regex.sub(r"\D", "", match.group())
            if not (_ISSUER.match(digits) and _luhn(digits)):
                continue
            # One in ten random numbers passes Luhn: unusual lengths need a card word nearby.
            score = 0.7 if len(digits) in (15, 16) else 0.35
            if cued(_CARD_CUE, text, match.start(), match.end(), after=0):
                score += 0.3
            results.append(self.result(match.start(), match.end(), score))
        return results
