"""Names the NER model misses but the sentence gives away: titles, "my name is", greetings, speech
verbs, kinship words, being addressed ("Maria, could you"), the recipient line above a postal address,
and an email address built from the name. English cue phrases only; no list of names is shipped."""

from __future__ import annotations

import functools
from collections.abc import Iterator

import regex
from presidio_analyzer import RecognizerResult
from presidio_analyzer.nlp_engine import NlpArtifacts

from guardproxy.guards.pii.recognizers.addresses import find_addresses
from guardproxy.guards.pii.recognizers.base import Recognizer, names_wanted
from guardproxy.guards.pii.recognizers.vocabulary import MAILBOX_WORD, NOT_A_NAME, ORG_WORD

_NAME_WORD = r"\p{Lu}[\p{Ll}'’]+(?:-\p{Lu}?[\p{Ll}'’]+)*|\p{Lu}\."
_PERSON_NAME = rf"(?:{_NAME_WORD})(?:[ ](?:{_NAME_WORD}|\p{{Lu}}\b)){{0,3}}"
_ANY_NAME = r"\p{L}[\p{L}'’-]+(?:[ ]\p{L}[\p{L}'’-]+)?"  # after "name is", where lower-case text is still a name
_KIN = (r"(?:kid|child|son|daughter|wife|husband|partner|brother|sister|mother|father|mom|dad|friend|boss|colleague"
        r"|uncle|aunt|cousin|nephew|niece|fianc[eé]e?|girlfriend|boyfriend)")
_PERSON_CUES = [(regex.compile(p, regex.VERSION1), s) for p, s in (
    (rf"\b(?:Mr|Mrs|Ms|Miss|Mx|Dr|Prof|Sir|Dame|Herr|Frau|Mme|Mlle|Sra?|Srta)\.?[ ]+(?P<name>{_PERSON_NAME})", 0.7),
    (rf"(?i:\bname(?:[ ]+(?:is|was)|[ ]*[:=?])[ ]+)(?P<name>{_ANY_NAME})", 0.6),
    (r"(?i:\b(?:I[ ]am|I'm|I’m|this[ ]is|call[ ]me|(?:named|called)(?:[ ](?:him|her))?|signed|regards,|sincerely,)\s+)"
     rf"(?P<name>{_PERSON_NAME})", 0.55),
    # Words that take a person: greetings, speech verbs, credits, kinship ("my kid Agi").
    (r"(?i:\b(?:dear|hi|hello|hey|thanks|said|asked|told|married|(?:directed|written|performed|sung|painted)[ ]by"
     r"|starring|featuring|assistant[ ]to|tribute[ ]to|speak[ ]to|shouted[ ]at|ex-\p{L}+|(?:my|his|her|our|their|your)"
     rf"[ ]{_KIN})[:,]?\s+)(?P<name>{_PERSON_NAME})", 0.5),
    (rf"(?P<name>{_PERSON_NAME})['’]s[ ]+(?i:{_KIN})\b", 0.5),
    (rf"(?i:\badd[ ]+)(?P<name>{_PERSON_NAME})(?i:[ ]+as[ ]+(?:a|an|the|my)?)", 0.5),
    # A speech verb after the name, perhaps after an apposition ("Ann Lee, the director, said").
    (rf"(?P<name>{_PERSON_NAME})(?:,[ ][^,\n]{{1,40}},)?(?i:[ ]+(?:said|says|shouted|asked|replied|wrote|told|lives|"
     r"lived|was[ ]born|is[ ]very|is[ ]a[ ]very|began|spent[ ]a|smiled|laughed|cried)\b)", 0.5),
    # Addressing someone at the start of a question or request ("Maria, could you ...").
    (rf"(?m:^[ \t>]*)(?P<name>{_NAME_WORD})(?=,[ ]+(?i:can|could|would|will|do|did|have|are|please)\b)", 0.5),
)]
_EMAIL_USER = regex.compile(r"[\w.+-]+(?=@[\w-]+\.[\w.-]+)")
_CAPITALISED_RUN = regex.compile(rf"(?<![\p{{L}}@.])(?:{_NAME_WORD})(?:[ ](?:{_NAME_WORD}|\p{{Lu}}\b)){{1,3}}")
_BLANK_LINE = regex.compile(r"\n[ \t>]*(?=\n)")
_TRAILING_BLANK = regex.compile(r"(?:\n[ \t>]*)+$")


@functools.lru_cache(maxsize=64)
def find_cued_names(text: str) -> tuple[tuple[int, int, float], ...]:
    """Names ``(start, end, score)`` given away by a cue phrase or by a letter head above an address.
    Cached because the NER recognizer asks too."""
    found = []
    for pattern, score in _PERSON_CUES:
        for match in pattern.finditer(text):
            name = match.group("name")
            if not NOT_A_NAME.fullmatch(name.split()[0]) and not ORG_WORD.search(name):
                found.append((match.start("name"), match.end("name"), score))
    for start, _, _ in find_addresses(text):
        found.extend(_recipients(text, start))
    found.extend(_email_owners(text))
    return tuple(found)


def _email_owners(text: str) -> Iterator[tuple[int, int, float]]:
    """A run of capitalised words of which two make up an email address in the same text: addresses
    are built from their owner's names ("Ann Lee" and ann.lee@example.com)."""
    users = [regex.sub(r"[^\p{L}]", "", m.group()).casefold() for m in _EMAIL_USER.finditer(text)]
    if not users:
        return
    for run in _CAPITALISED_RUN.finditer(text):
        for user in users:
            # The span runs from the first to the last word of the run found in the address ("I'm" is not).
            inside = [w for w in regex.finditer(r"\S{3,}", run.group()) if w.group().casefold() in user]
            if len(inside) >= 2 and not ORG_WORD.search(run.group()) and not MAILBOX_WORD.search(run.group()):
                yield run.start() + inside[0].start(), run.start() + inside[-1].end(), 0.6
                break


def _recipients(text: str, address_start: int) -> Iterator[tuple[int, int, float]]:
    """The first lines of a letter head: a name, perhaps a company, then the address."""
    # The paragraph before the address line; a blank line may separate the two.
    before = _TRAILING_BLANK.sub("", text[: text.rfind("\n", 0, address_start) + 1])
    head_start = max((m.end() + 1 for m in _BLANK_LINE.finditer(before)), default=0)
    head = before[head_start:]
    first = regex.match(r"[\s>]*(?:[\p{L} ]{2,20}:[ \t]*)?(?P<line>[^\n]*)", head)
    if first is None or head.count("\n", first.start("line")) > 3:
        return
    words = first.group("line").split()
    if 2 <= len(words) <= 4 and all(regex.fullmatch(_NAME_WORD, w) for w in words) and not ORG_WORD.search(
            first.group("line")):
        start = head_start + first.start("line")
        yield start, start + len(" ".join(words)), 0.6


class PersonCueRecognizer(Recognizer):
    """Names the NER model misses but the sentence gives away: after a title (Mrs. Schwarz), after
    "my name is" or "Name:" (in any case), after "I'm", before "said", on the recipient line above an
    address, and next to the email address made of them (see ``find_cued_names``)."""

    ENTITIES = ["PERSON"]

    def analyze(self, text: str, entities: list[str], nlp_artifacts: NlpArtifacts | None = None
                ) -> list[RecognizerResult]:
        if not names_wanted(nlp_artifacts):
            return []
        return [self.result(start, end, score) for start, end, score in find_cued_names(text)]
