"""Street addresses as written in mail, found by general patterns: street-type words from postal
standards (no list of streets or places), house numbers, units, postcodes and address cue words.

``find_addresses`` is public to the package because the person and phone recognizers ask where the
addresses are: house numbers are not phone numbers, and street names are not people.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator

import regex
from presidio_analyzer import RecognizerResult
from presidio_analyzer.nlp_engine import NlpArtifacts

from guardproxy.guards.pii.recognizers.base import CONTEXT_WINDOW, Recognizer

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
PARTICLE = r"(?:\p{Ll}{1,4}(?!\p{L})\.?)"  # short lower-case particles inside names: de, del, van, nad, tér, u.
_PLACE_NAME = rf"{_CAP}(?:[ \t]+(?:{PARTICLE}[ \t]+)?{_CAP}){{0,3}}"
_NAME = rf"{_PLACE_NAME}(?:[ \t]+{PARTICLE})?"  # a street name may end in its type: "Erzsébet tér 19."
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
    (rf"\b(?:{_NUM}[ \t]+)?(?i:{_PREFIXES})\.?[ \t]+(?:{PARTICLE}[ \t]+)?{_NAME}(?:[ \t]+{_NUM}\b\.?)?", 0.55),
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
            if _ADDRESS_CUE.search(text, max(0, start - CONTEXT_WINDOW), start):
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


class StreetAddressRecognizer(Recognizer):
    """Street addresses as written in mail: US/UK street lines, European "name number" lines, PO boxes,
    military APO/FPO/DPO addresses, units, and the place and postcode lines after them."""

    ENTITIES = ["STREET_ADDRESS"]

    def analyze(self, text: str, entities: list[str], nlp_artifacts: NlpArtifacts | None = None
                ) -> list[RecognizerResult]:
        return [self.result(start, end, score) for start, end, score in find_addresses(text)]
