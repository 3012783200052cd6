"""Recognizers that close the gaps of Presidio's predefined set on everyday PII shapes.

Stock Presidio with the small spaCy model finds about half of the personal data in
free text: it has no street-address recognizer, scores most phone numbers 0.4
(dropped at any threshold of 0.5), knows only five card prefixes, and the NER model
misses names in lower case, after titles or in address blocks, while calling street
names "PERSON". Everything here is a general pattern (street-type words from postal
standards, phone layouts, card number ranges, English cue phrases); no list of names
or places is shipped, so nothing depends on the data it was measured on.

No recognizer touches the network, and none needs the NER model except
``ContextualNerRecognizer`` (which only refines what the model already found).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import ClassVar

import phonenumbers
import regex
from presidio_analyzer import EntityRecognizer, RecognizerResult
from presidio_analyzer.nlp_engine import NlpArtifacts, NoOpNlpEngine
from presidio_analyzer.predefined_recognizers import SpacyRecognizer

__all__ = [
    "DEFAULT_ENTITIES", "DEFAULT_ENTITY_THRESHOLDS", "DEFAULT_SCORE_THRESHOLD", "CardNumberRecognizer",
    "ContextualNerRecognizer", "PersonCueRecognizer", "PhoneNumberRecognizer", "PlaceCueRecognizer",
    "StreetAddressRecognizer", "find_addresses", "quality_recognizers",
]

# URL is off: links in prompts are rarely personal, and redacting them breaks most tasks.
DEFAULT_ENTITIES: list[str] = [
    "PERSON", "EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "US_SSN", "IBAN_CODE", "IP_ADDRESS",
    "LOCATION", "STREET_ADDRESS", "US_BANK_NUMBER", "CRYPTO",
]

# Scores below follow one scale: 0.3-0.4 is "the shape alone", a cue (context word, title,
# address layout) adds about 0.3, a checksum or an unambiguous layout is 0.7 or more.
# 0.4 keeps every shape that has one piece of supporting evidence, and drops bare shapes.
DEFAULT_SCORE_THRESHOLD: float = 0.4
# Per type, where the evidence of the shape alone differs from that scale (tuned on one random half of
# presidio-research's synthetic set and confirmed on the other; see benchmarks/pii_quality.py):
DEFAULT_ENTITY_THRESHOLDS: dict[str, float] = {
    # A street address without a house number or an address cue is a name ("Central Park").
    "STREET_ADDRESS": 0.5,
    # Presidio's US bank number is "any 8-17 digits" at 0.05 before context; it needs its cue words.
    "US_BANK_NUMBER": 0.5,
}

_CONTEXT_WINDOW = 40  # characters before a match searched for cue words: about the same line of a form

# --- Addresses -------------------------------------------------------------------------------------
# Street-type words: the USPS Publication 28 suffixes (English-speaking countries share them) and the
# words that precede the name in Romance, Slavic and Greek-transliterated addresses.
_SUFFIXES = (
    "Alley|Ally|Annex|Arcade|Avenue|Ave|Bayou|Beach|Bend|Bluffs?|Bottom|Boulevard|Blvd|Branch|Bridge|Brooks?|"
    "Burgs?|Bypass|Camp|Canyon|Cape|Causeway|Centers?|Centre|Circles?|Cir|Cliffs?|Close|Club|Commons?|Corners?|"
    "Course|Courts?|Ct|Coves?|Creek|Crescent|Crest|Crossing|Crossroad|Curve|Dale|Dam|Divide|Drives?|Dr|Drove|"
    "Estates?|Expressway|Extensions?|Falls?|Ferry|Fields?|Flats?|Fords?|Forest|Forges?|Forks?|Fort|Freeway|Gardens?|"
    "Gateway|Glens?|Greens?|Groves?|Harbou?rs?|Haven|Heights|Highway|Hwy|Hills?|Hollow|Inlet|Islands?|Isle|"
    "Junctions?|Keys?|Knolls?|Lakes?|Land|Landing|Lane|Ln|Lights?|Loaf|Locks?|Lodge|Loop|Mall|Manors?|Meadows?|"
    "Mews|Mills?|Missions?|Motorway|Mount|Mountains?|Neck|Orchard|Oval|Overpass|Parade|Parks?|Parkways?|Pkwy|"
    "Pass|Passage|Path|Pike|Pines?|Place|Pl|Plains?|Plaza|Points?|Ports?|Prairie|Radial|Ramp|Ranch|Rapids?|Rest|"
    "Ridges?|Rise|River|Roads?|Rd|Route|Row|Rue|Run|Shoals?|Shores?|Skyway|Springs?|Spurs?|Squares?|Sq|Station|"
    "Stravenue|Stream|Streets?|St|Summit|Terrace|Throughway|Trace|Track|Trafficway|Trail|Trailer|Tunnel|"
    "Turnpike|Underpass|Unions?|Valleys?|Viaduct|Views?|Villages?|Ville|Vista|Walks?|Wall|Ways?|Wells?|Wharf|Wynd"
)
_PREFIXES = (
    "Rua|Rue|Via|Viale|Vicolo|Piazza|Piazzale|Corso|Largo|Calle|Carrer|Camino|Avenida|Avinguda|Avda|Av|Paseo|"
    "Plaza|Praça|Praca|Travessa|Estrada|Rodovia|Alameda|Strada|Chemin|Route|Allée|Impasse|Boulevard|Quai|Place|"
    "Ulica|ul|Aleja|al|Odos|Calea|Str|Jalan|Jl|Platz|Piata|Avenue|Bulevar|Trg"
)
# Street-type endings written as one word with the name (Pohlstrasse, Kiannonkatu, Mellemvej, Parijsstraat).
_COMPOUND = (
    "stra(?:ss|ß)e|str\\.|gasse|weg|allee|platz|damm|ufer|steig|pfad|gade|vej|vænget|stræde|vägen|väg|gatan|"
    "gata|gate|veien|vegen|vegur|straat|laan|gracht|plein|kade|singel|dreef|katu|tie|kuja|polku|tori|utca|út|tér|"
    "körút|sor|ulice|náměstí|třída|cesta|trg|vegi|gränd|torget|bakken|stien"
)
_NUM = r"\d{1,6}[A-Za-z]?"
_CAP = r"\p{Lu}[\p{L}'’.-]*"  # a capitalised or upper-case word, initials and hyphens included
_LOW = r"(?:\p{Ll}{1,4}(?!\p{L})\.?)"  # short lower-case particles inside names: de, del, van, nad, tér, u.
_PLACE_NAME = rf"{_CAP}(?:[ \t]+(?:{_LOW}[ \t]+)?{_CAP}){{0,3}}"
_NAME = rf"{_PLACE_NAME}(?:[ \t]+{_LOW})?"  # a street name may end in its type: "Erzsébet tér 19."
_UNIT = r"(?:Apt|Apartment|Suite|Ste|Unit|Flat|Floor|Fl|Room|Rm|Bldg|Building)\.?(?:[ \t]*#?[ \t]*\d+[A-Za-z]?)?"
# Numeric (12345, 340 12), UK (SW1A 1AA), Canadian (K1A 0B1) and Dutch (1234 AB) postcodes.
_POSTCODE = (r"(?:\d{3}[ ]?\d{2}|\d{4,6}|\p{Lu}{1,2}\d[\p{Lu}\d]?[ ]?\d\p{Lu}{2}|\p{Lu}\d\p{Lu}[ ]?\d\p{Lu}\d"
             r"|\d{4}[ ]?\p{Lu}{2})")
_MILITARY = (r"(?i:(?:(?:PSC|CMR|Unit)[ \t]+\d{1,5},?[ \t]+Box[ \t]+\d{1,5}|USNS|USS|USNV|USCGC)"
             r"[^\n\d]{0,30}?\s*(?:APO|FPO|DPO)[ \t]+(?:AA|AE|AP)[ \t]+\d{5})")

_UNIT_NUMBER = r"\b(?:Apt|Apartment|Suite|Ste|Unit)\.?[ \t]*#?[ \t]*\d+[A-Za-z]?\b"

# (pattern, score): the score says how sure the street line alone makes us.
_ANCHORS = [(regex.compile(p, regex.VERSION1), s) for p, s in (
    (_MILITARY, 0.9),
    (r"(?i:\b(?:P\.?[ ]?O\.?[ ]?Box|Post[ ]?Office[ ]?Box|Postbox|Postfach|Apartado|Caixa[ ]Postal|Casilla)"
     r"[ \t]+\d{1,6})", 0.8),
    (rf"\b{_NUM}(?:[ \t]+{_NUM})?[ \t]+{_NAME}[ \t]+(?:{_SUFFIXES})\b\.?", 0.8),
    (rf"\b(?:{_NUM}[ \t]+)?(?i:{_PREFIXES})\.?[ \t]+(?:{_LOW}[ \t]+)?{_NAME}(?:[ \t]+{_NUM}\b\.?)?", 0.55),
    (rf"\b(?:{_NUM}[ \t]+)?(?:{_CAP}[ \t]+){{0,2}}\p{{Lu}}[\p{{L}}-]{{2,}}[ ]?(?i:{_COMPOUND})[ \t]+{_NUM}\b\.?", 0.8),
    (rf"\b\d{{2,6}}[ \t]+{_NAME}[ \t]+\d{{1,6}}\b\.?", 0.45),
    (rf"\b\d{{2,6}}[ \t]+\d{{1,6}}[ \t]+\p{{Lu}}\p{{Ll}}+(?:[ \t]+{_CAP}){{1,3}}", 0.5),
    (rf"(?i:\bcorner[ \t]+of[ \t]+)(?-i:(?:{_NUM}[ \t]+)?{_NAME}(?:[ \t]+{_NUM})?[ \t]+and[ \t]+{_NAME})", 0.8),
    (_UNIT_NUMBER, 0.3),
    (rf"\b{_NAME}[ \t]+(?:{_SUFFIXES})\b", 0.3),
)]
_UNIT_ONLY = regex.compile(_UNIT_NUMBER)
# What may follow a street line inside one address: a unit, a place, a postcode, a country with postcode.
_CONTINUATION = regex.compile(
    rf"(?:,[ \t]*|[ \t]*\n(?:[ \t>]*\n)?[ \t>]*|[ \t]+)"
    rf"(?:{_UNIT}|{_PLACE_NAME}(?:[ \t]+\(\p{{L}}+\))?(?:,?[ \t]+{_POSTCODE})?|{_POSTCODE}(?:[ \t]+{_PLACE_NAME})?)"
    rf"(?=[ \t]*(?:$|[\n,.;:?!)]|[ \t]+\p{{Ll}}|[ \t]+(?:{_UNIT})))", regex.VERSION1)
_ADJACENT = regex.compile(r"[ \t]*(?:,|\n)?[ \t>]*")
_ADDRESS_CUE = regex.compile(
    r"(?i:address|lives?[ ]+(?:at|on)|living[ ]+at|located[ ]+at|resid\w*|deliver\w*|ship\w*[ ]+to|send\w*.{0,20}to|"
    r"mail\w*[ ]+to|moved[ ]+to|billing|postal|return[ ]+to|meet[ ]+(?:me[ ]+)?at|drops?[ ]+you[ ]+off[ ]+at)")


@functools.lru_cache(maxsize=64)
def find_addresses(text: str) -> tuple[tuple[int, int, float], ...]:
    """Address spans ``(start, end, score)`` in ``text``: street lines grown over the unit, place and
    postcode pieces that follow them. Cached because the person and phone recognizers ask too."""
    found: list[tuple[int, int, float]] = []
    for pattern, base in _ANCHORS:
        for match in pattern.finditer(text):
            start, end, score = match.start(), match.end(), base
            while (more := _CONTINUATION.match(text, end)) is not None and more.end() > end:
                end, score = more.end(), score + 0.1
            if _ADDRESS_CUE.search(text, max(0, start - _CONTEXT_WINDOW), start):
                score += 0.3
            if base < 0.5 and score == base + 0.3 and not _UNIT_ONLY.fullmatch(text, start, end):
                score -= 0.1  # a street name with a cue but no number or unit: likely, not sure
            found.append((start, end, min(score, 1.0)))
    return tuple(_merge(text, found))


def _merge(text: str, spans: list[tuple[int, int, float]]) -> Iterator[tuple[int, int, float]]:
    """Overlapping spans, and spans apart by a comma or a line break ("Apt. 117 5720 Skoanveien 226"),
    become one with the best score of its parts."""
    current: tuple[int, int, float] | None = None
    for start, end, score in sorted(spans):
        if current is not None and (start < current[1] or _ADJACENT.fullmatch(text, current[1], start)):
            current = (current[0], max(end, current[1]), max(score, current[2]))
            continue
        if current is not None:
            yield current
        current = (start, end, score)
    if current is not None:
        yield current


class _Recognizer(EntityRecognizer):
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


def _names_wanted(nlp_artifacts: NlpArtifacts | None) -> bool:
    """Pattern mode (the no-op NLP engine) promises structured identifiers only, no names or places;
    the cue recognizers keep that promise although they need no model."""
    return nlp_artifacts is None or not isinstance(nlp_artifacts.nlp_engine, NoOpNlpEngine)


def _cued(cue: regex.Pattern[str], text: str, start: int, end: int, after: int = 12) -> bool:
    """A cue word just before the match (same form line) or right after it ("416 60 039 office")."""
    return bool(cue.search(text, max(0, start - _CONTEXT_WINDOW), start)
                or (after and regex.match(rf"[\s,;:-]*(?:{cue.pattern})", text[end: end + after])))


class StreetAddressRecognizer(_Recognizer):
    """Street addresses as written in mail: US/UK street lines, European "name number" lines, PO boxes,
    military APO/FPO/DPO addresses, units, and the place and postcode lines after them."""

    ENTITIES = ["STREET_ADDRESS"]

    def analyze(self, text: str, entities: list[str], nlp_artifacts: NlpArtifacts | None = None
                ) -> list[RecognizerResult]:
        return [self.result(start, end, score) for start, end, score in find_addresses(text)]


# --- Phone numbers ---------------------------------------------------------------------------------
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


class PhoneNumberRecognizer(_Recognizer):
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
        cued = _cued(_PHONE_CUE, text, start, end)
        if body.startswith("+"):
            score = 0.7 if _possible_international(body) else 0.4
        elif "(" in body or _NANP.fullmatch(body):
            score = 0.6
        elif regex.fullmatch(r"\d{3,4}-\d{2}-\d{4}", body):
            return 0.0  # the SSN layout (and licence numbers like it): the SSN recognizer's call
        else:
            score = 0.3
            if groups == 1 and not cued:
                return 0.0
            if any(start < a_end and a_start < end for a_start, a_end, _ in find_addresses(text)):
                return 0.0  # house and street numbers ("3536 1659 Hoog St")
        return score + (0.1 if extension else 0.0) + (0.3 if cued else 0.0)


def _possible_international(number: str) -> bool:
    try:
        return bool(phonenumbers.is_possible_number(phonenumbers.parse(number.replace("(0)", ""), None)))
    except phonenumbers.NumberParseException:
        return False


# --- Card numbers ----------------------------------------------------------------------------------
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


class CardNumberRecognizer(_Recognizer):
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
            if _cued(_CARD_CUE, text, match.start(), match.end(), after=0):
                score += 0.3
            results.append(self.result(match.start(), match.end(), score))
        return results


# --- People and places ------------------------------------------------------------------------------
_NAME_WORD = r"\p{Lu}[\p{Ll}'’]+(?:-\p{Lu}?[\p{Ll}'’]+)*|\p{Lu}\."
_PERSON_NAME = rf"(?:{_NAME_WORD})(?:[ ](?:{_NAME_WORD}|\p{{Lu}}\b)){{0,3}}"
_ANY_NAME = r"\p{L}[\p{L}'’-]+(?:[ ]\p{L}[\p{L}'’-]+)?"  # after "name is", where lower-case text is still a name
_PERSON_CUES = [(regex.compile(p, regex.VERSION1), s) for p, s in (
    (rf"\b(?:Mr|Mrs|Ms|Miss|Mx|Dr|Prof|Sir|Dame|Herr|Frau|Mme|Mlle|Sra?|Srta)\.?[ ]+(?P<name>{_PERSON_NAME})", 0.7),
    (rf"(?i:\bname(?:[ ]+(?:is|was)|[ ]*[:=?])[ ]+)(?P<name>{_ANY_NAME})", 0.6),
    (r"(?i:\b(?:I[ ]am|I'm|I’m|this[ ]is|call[ ]me|named|called|signed|regards,|sincerely,)\s+)"
     rf"(?P<name>{_PERSON_NAME})", 0.55),
    # Words that take a person: greetings, speech verbs, credits, kinship ("my kid Agi").
    (r"(?i:\b(?:dear|hi|hello|hey|thanks|said|asked|told|married|(?:directed|written|performed|sung|painted)[ ]by"
     r"|starring|featuring|assistant[ ]to|tribute[ ]to|speak[ ]to|shouted[ ]at|ex-\p{L}+|(?:my|his|her|our|their|your)"
     r"[ ](?:kid|child|son|daughter|wife|husband|partner|brother|sister|mother|father|mom|dad|friend|boss|colleague"
     rf"|uncle|aunt|cousin|nephew|niece|fianc[eé]e?|girlfriend|boyfriend))[:,]?\s+)(?P<name>{_PERSON_NAME})", 0.5),
    (rf"(?i:\badd[ ]+)(?P<name>{_PERSON_NAME})(?i:[ ]+as[ ]+(?:a|an|the|my)?)", 0.5),
    (rf"(?P<name>{_PERSON_NAME})(?i:[ ]+(?:said|says|shouted|asked|replied|wrote|told|lives|lived|was[ ]born|"
     r"is[ ]very|is[ ]a[ ]very|began|spent[ ]a|smiled|laughed|cried)\b)", 0.5),
)]
_NOT_A_NAME = regex.compile(
    r"(?i:the|a|an|and|or|not|on|in|at|of|to|from|here|there|glad|sorry|happy|sure|fine|good|interested|looking|"
    r"writing|calling|going|trying|able|unable|afraid|ready|unemployed|busy|mr|mrs|ms|dr|i|i'm|i’m|it's|we|you)")
_BLANK_LINE = regex.compile(r"\n[ \t>]*(?=\n)")
_TRAILING_BLANK = regex.compile(r"(?:\n[ \t>]*)+$")
_ORG_WORD = regex.compile(
    r"(?i:\b(?:inc|ltd|llc|plc|gmbh|corp|co|company|group|bank|sons|orchestra|university|school|solutions|"
    r"systems|software|technologies|services|foundation|association|club|partners|incorporated|markets|transit)\b\.?)")
_LIST_MEMBER = r"\p{L}[\p{L}'’-]*"
_NAME_LIST = regex.compile(rf"{_LIST_MEMBER}(?:,[ ]+{_LIST_MEMBER}){{1,}},?[ ]+(?:and|&)[ ]+{_LIST_MEMBER}|"
                           rf"{_LIST_MEMBER}[ ]+(?:and|&)[ ]+{_LIST_MEMBER}")
_PLACE_CUE = regex.compile(
    rf"(?i:\b(?:(?:I[ ]am|I'm|we[ ]are|we're|live[sd]?|living|based|located|born|raised|grew[ ]up|stay(?:ing)?)"
    r"[ ]+in|(?:travel(?:l?ing)?|moving|moved|flew|fly(?:ing)?|trip|going|went|relocat\w*|returned|returning|"
    r"arrived|arriving|coming|came|welcome|back)[ ]+(?:back[ ]+)?(?:to|at|in)|(?:originally|moved[ ]here|come|"
    r"comes|came|I[ ]am|I'm|we're|we[ ]are)[ ]+from|(?:city|town|village|capital|province|region|county|"
    rf"University)[ ]+of)[ ]+)(?P<place>\p{{Lu}}[\p{{L}}'’-]*(?:[ ](?:{_LOW}[ ])?\p{{Lu}}[\p{{L}}'’-]*){{0,2}})",
    regex.VERSION1)
_TIME_WORD = regex.compile(
    r"(?i:(?:january|february|march|april|may|june|july|august|september|october|november|december|monday|"
    r"tuesday|wednesday|thursday|friday|saturday|sunday|the|a|an|my|our|your|his|her|their|this|that|it)\b)")


class PersonCueRecognizer(_Recognizer):
    """Names the NER model misses but the sentence gives away: after a title (Mrs. Schwarz), after
    "my name is" or "Name:" (in any case), after "I'm", and on the recipient line above an address."""

    ENTITIES = ["PERSON"]

    def analyze(self, text: str, entities: list[str], nlp_artifacts: NlpArtifacts | None = None
                ) -> list[RecognizerResult]:
        if not _names_wanted(nlp_artifacts):
            return []
        results = []
        for pattern, score in _PERSON_CUES:
            for match in pattern.finditer(text):
                name = match.group("name")
                if not _NOT_A_NAME.fullmatch(name.split()[0]) and not _ORG_WORD.search(name):
                    results.append(self.result(match.start("name"), match.end("name"), score))
        for start, _, _ in find_addresses(text):
            results.extend(self._recipients(text, start))
        return results

    def _recipients(self, text: str, address_start: int) -> Iterator[RecognizerResult]:
        """The first lines of a letter head: a name, perhaps a company, then the address."""
        # The paragraph before the address line; a blank line may separate the two.
        before = _TRAILING_BLANK.sub("", text[: text.rfind("\n", 0, address_start) + 1])
        head_start = max((m.end() + 1 for m in _BLANK_LINE.finditer(before)), default=0)
        head = before[head_start:]
        first = regex.match(r"[ \t>]*(?:[\p{L} ]{2,20}:[ \t]*)?(?P<line>[^\n]*)", head)
        if first is None or head.count("\n") > 3:
            return
        words = first.group("line").split()
        if 2 <= len(words) <= 4 and all(regex.fullmatch(_NAME_WORD, w) for w in words) and not _ORG_WORD.search(
                first.group("line")):
            start = head_start + first.start("line")
            yield self.result(start, start + len(" ".join(words)), 0.6)


class PlaceCueRecognizer(_Recognizer):
    """Places named after "I'm in", "travelling to", "originally from", "grew up in" and the like,
    in any script or case the NER model does not know (KNIVSTA, ΛΕΥΚΩΣΙΑ)."""

    ENTITIES = ["LOCATION"]

    def analyze(self, text: str, entities: list[str], nlp_artifacts: NlpArtifacts | None = None
                ) -> list[RecognizerResult]:
        if not _names_wanted(nlp_artifacts):
            return []
        return [self.result(m.start("place"), m.end("place"), 0.6) for m in _PLACE_CUE.finditer(text)
                if not _TIME_WORD.match(m.group("place")) and not _ORG_WORD.search(m.group("place"))]


class ContextualNerRecognizer(_Recognizer):
    """The NER model's entities (what Presidio's spaCy recognizer reports, which this replaces), with
    PERSON and LOCATION corrected by what the text around them shows.

    Drops names inside a street address (the small model calls "Kishiev Squares" a person), with
    digits, "@" or "/", or followed by an organisation word ("Davis Orchestra"); and extends a found
    name to the other members of its list ("Usamov and Bowers", "silvana, adam, chad and caleb"): the
    model often finds only one of them. Without NER entities (pattern mode) it reports nothing.
    """

    ENTITIES = list(SpacyRecognizer.ENTITIES)

    def analyze(self, text: str, entities: list[str], nlp_artifacts: NlpArtifacts | None = None
                ) -> list[RecognizerResult]:
        if nlp_artifacts is None or not nlp_artifacts.entities:
            return []
        addresses = find_addresses(text)
        kept: list[RecognizerResult] = []
        for entity, score in zip(nlp_artifacts.entities, nlp_artifacts.scores, strict=False):
            start, end, label = entity.start_char, entity.end_char, entity.label_
            if label not in entities or label not in self.supported_entities:
                continue
            if label in ("PERSON", "LOCATION") and (
                    regex.search(r"[\d@/]", text[start:end]) or _ORG_WORD.search(text[start:end + 15])
                    or (label == "PERSON" and any(start < e and s < end for s, e, _ in addresses))):
                continue
            kept.append(self.result(start, end, score, label))
        people = [r for r in kept if r.entity_type == "PERSON"]
        return kept + list(self._list_members(text, people))

    def _list_members(self, text: str, people: list[RecognizerResult]) -> Iterator[RecognizerResult]:
        for listing in _NAME_LIST.finditer(text):
            if _ORG_WORD.search(text, listing.start(), listing.end() + 30):
                continue
            if not any(listing.start() <= p.start and p.end <= listing.end() for p in people):
                continue
            for member in regex.finditer(_LIST_MEMBER, listing.group()):
                word = member.group()
                start = listing.start() + member.start()
                if word not in ("and", "&") and not _TIME_WORD.fullmatch(word) and not any(
                        p.start <= start < p.end for p in people):
                    yield self.result(start, start + len(word), 0.6, "PERSON")


def quality_recognizers(language: str) -> tuple[list[EntityRecognizer], list[str]]:
    """The recognizers to add to ``build_analyzer`` and the predefined ones they replace.

    The NER refinement replaces Presidio's spaCy recognizer; in pattern mode there are no NER
    entities, so it finds nothing and costs nothing.
    """
    extra: list[EntityRecognizer] = [
        StreetAddressRecognizer(language), PhoneNumberRecognizer(language), CardNumberRecognizer(language),
        PersonCueRecognizer(language), PlaceCueRecognizer(language), ContextualNerRecognizer(language),
    ]
    return extra, ["PhoneRecognizer", "CreditCardRecognizer", "SpacyRecognizer"]
