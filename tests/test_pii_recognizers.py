"""The PII quality recognizers on hand-written examples (none taken from the shared data sets)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest
import spacy
from presidio_analyzer import AnalyzerEngine
from presidio_analyzer.nlp_engine import NlpArtifacts, SpacyNlpEngine
from spacy.tokens import Span

from guardproxy.guards.pii.analyzer import build_analyzer
from guardproxy.guards.pii.recognizers import (
    DEFAULT_ENTITIES,
    DEFAULT_ENTITY_THRESHOLDS,
    DEFAULT_SCORE_THRESHOLD,
    CardNumberRecognizer,
    ContextualNerRecognizer,
    PersonCueRecognizer,
    PhoneNumberRecognizer,
    PlaceCueRecognizer,
    StreetAddressRecognizer,
    quality_recognizers,
)


def kept(text: str, recognizer: Any) -> list[str]:
    """The texts a recognizer reports at or above the default threshold for its type."""
    results = recognizer.analyze(text, DEFAULT_ENTITIES, None)
    return [text[r.start:r.end] for r in results
            if r.score >= DEFAULT_ENTITY_THRESHOLDS.get(r.entity_type, DEFAULT_SCORE_THRESHOLD)]


def with_luhn(prefix: str) -> str:
    """``prefix`` plus the check digit that makes it pass Luhn."""
    for check in "0123456789":
        digits = prefix + check
        total = sum(int(c) if i % 2 == 0 else (int(c) * 2 - 9 if int(c) * 2 > 9 else int(c) * 2)
                    for i, c in enumerate(reversed(digits)))
        if total % 10 == 0:
            return digits
    raise AssertionError("unreachable")


@pytest.mark.parametrize(("text", "number"), [
    ("Call 555.123.4567 after six", "555.123.4567"),
    ("Our London desk: +44 20 7946 0958", "+44 20 7946 0958"),
    ("ring the Adelaide office on (08) 8747 6301", "(08) 8747 6301"),
    ("Reach me at 212-555-0199 x0135 any time", "212-555-0199 x0135"),
    ("Zurich switchboard +41 (0)44 668 18 00", "+41 (0)44 668 18 00"),
    ("mobile: 06 12 34 56 78", "06 12 34 56 78"),
    ("Warehouse 030 1234567 fax", "030 1234567"),
])
def test_phone_layouts(text: str, number: str) -> None:
    assert kept(text, PhoneNumberRecognizer()) == [number]


@pytest.mark.parametrize("text", [
    "Upgrade to v1.2.3.4 first",
    "The meeting is on 2023-10-05 at noon",
    "SSN 123-45-6789 on file",
    "the server at 10.20.30.40 is down",
    "card 4111 1111 1111 1111",
    "order 12345 shipped",
    "we sold 1 234 567 units",  # grouped digits without a phone cue
    "He lives at 3536 1659 Oak Street",  # house numbers, not a phone
])
def test_phone_negatives(text: str) -> None:
    assert kept(text, PhoneNumberRecognizer()) == []


@pytest.mark.parametrize(("text", "address"), [
    ("Deliver to Suite 500 please", "Suite 500"),
    ("PSC 1234, Box 5678, APO AE 09876", "PSC 1234, Box 5678, APO AE 09876"),
    ("Ship it to USS Ramage, FPO AE 09586 soon", "USS Ramage, FPO AE 09586"),
    ("Write to P.O. Box 4471, Springfield", "P.O. Box 4471, Springfield"),
    ("Send it to 1600 Pennsylvania Avenue NW, Washington, DC 20500.",
     "1600 Pennsylvania Avenue NW, Washington, DC 20500"),
    ("Office: 10 Downing Street, London SW1A 2AA", "10 Downing Street, London SW1A 2AA"),
    ("Wir wohnen in der Hauptstraße 12, 10115 Berlin", "Hauptstraße 12, 10115 Berlin"),
    ("Ci vediamo in Via Roma 15, 00184 Roma", "Via Roma 15, 00184 Roma"),
    ("Jane Roe\n\n42 Maple Grove\n Apt. 7\n Toronto\n Canada M5V 2T6",
     "42 Maple Grove\n Apt. 7\n Toronto\n Canada M5V 2T6"),
    ("Billing address: 881 Tallinna 14\n Tartu\n Estonia 50303", "881 Tallinna 14\n Tartu\n Estonia 50303"),
])
def test_street_addresses(text: str, address: str) -> None:
    assert kept(text, StreetAddressRecognizer()) == [address]


@pytest.mark.parametrize("text", [
    "Upgrade to v1.2.3.4 first",
    "Room for 2 more people",
    "Read Chapter 12 Section 4 tonight",
    "Windows 10 is installed",
    "I walked in Central Park",  # a place, but no address: the NER model's LOCATION, not ours
    "During 2019, Acme Corp grew",
])
def test_street_address_negatives(text: str) -> None:
    assert kept(text, StreetAddressRecognizer()) == []


def test_card_numbers() -> None:
    visa16 = with_luhn("411111111111111")
    mastercard_2_series = with_luhn("272011112222333")
    maestro12 = with_luhn("50381234567")
    text = f"card {visa16}, card no {mastercard_2_series[:4]} {mastercard_2_series[4:8]} {mastercard_2_series[8:12]} " \
           f"{mastercard_2_series[12:]} and maestro card {maestro12}"
    assert len(kept(text, CardNumberRecognizer())) == 3
    broken = visa16[:-1] + str((int(visa16[-1]) + 1) % 10)
    assert kept(f"card {broken}", CardNumberRecognizer()) == []
    assert kept(f"reference {maestro12}", CardNumberRecognizer()) == []  # a rare length needs a card word


@pytest.mark.parametrize(("text", "name"), [
    ("Please ask Mrs. Okonkwo-Bello to sign", "Okonkwo-Bello"),
    ("hi, my name is tomasz wierzbicki", "tomasz wierzbicki"),
    ("Name: Priya Raman", "Priya Raman"),
    ("Dear Ingeborg, thanks for the note", "Ingeborg"),
    ("I would like to add Rafael Quispe as a beneficiary", "Rafael Quispe"),
    ("Ngozi Adeyemi\n\n17 Elm Terrace\n Leeds\n LS6 2AB", "Ngozi Adeyemi"),
    ("> \n> Ngozi Adeyemi\n> Brightwell Ltd\n> 17 Elm Terrace\n> Leeds", "Ngozi Adeyemi"),
    ("She named her Oriane", "Oriane"),
    ("It was the plan of Teodor's sister all along", "Teodor"),
    ("Halima Osei, the lead engineer, said the fix is ready", "Halima Osei"),
    ("Benedikt, could you review the draft?", "Benedikt"),
    ("Contact: Olek Varga (olek.varga@example.com)", "Olek Varga"),
])
def test_person_cues(text: str, name: str) -> None:
    assert name in kept(text, PersonCueRecognizer())


@pytest.mark.parametrize("text", [
    "I'm glad to help",
    "The name is not important",
    "My name appears twice on the statement",
    "Acme Solutions\n\n17 Elm Terrace\n Leeds",
    "However, could you shorten it?",
    "Customer Care\n\nwrite to customer.care@example.com",
])
def test_person_cue_negatives(text: str) -> None:
    assert kept(text, PersonCueRecognizer()) == []


def test_place_cues() -> None:
    assert kept("Next week I'm travelling to Valparaíso with family", PlaceCueRecognizer()) == ["Valparaíso"]
    assert kept("she grew up in TRONDHEIM", PlaceCueRecognizer()) == ["TRONDHEIM"]
    assert kept("We are in Monday's meeting", PlaceCueRecognizer()) == []


def artifacts(text: str, people: list[tuple[int, int]]) -> NlpArtifacts:
    """NER output as the spaCy engine gives it, with chosen PERSON entities (token offsets)."""
    doc = spacy.blank("en")(text)
    doc.ents = [Span(doc, start, end, "PERSON") for start, end in people]
    return NlpArtifacts(entities=list(doc.ents), tokens=doc, tokens_indices=[t.idx for t in doc],
                        lemmas=[t.text for t in doc], nlp_engine=None, language="en", scores=[0.85] * len(people))


def test_ner_extends_lists_and_drops_street_names() -> None:
    recognizer = ContextualNerRecognizer()
    text = "Brennan, Okafor and Lindqvist met at 14 Kestrel Hill Parks"
    nlp = artifacts(text, [(2, 3), (9, 11)])  # "Okafor", and "Hill Parks" (a street, taken for a name)
    found = {(text[r.start:r.end], r.score) for r in recognizer.analyze(text, DEFAULT_ENTITIES, nlp)}
    assert found == {("Okafor", 0.85), ("Brennan", 0.6), ("Lindqvist", 0.6)}
    assert recognizer.analyze(text, DEFAULT_ENTITIES, None) == []


def test_ner_finds_other_mentions_of_a_found_name() -> None:
    recognizer = ContextualNerRecognizer()
    text = "Ines Mbeki wrote the brief. Later Mbeki sent it to ines.mbeki@example.org and Mbeki Lane."
    found = [text[r.start:r.end] for r in recognizer.analyze(text, DEFAULT_ENTITIES, artifacts(text, [(0, 2)]))]
    assert found == ["Ines Mbeki", "Mbeki"]  # not the email address, not the street ("Mbeki Lane")


def test_ner_extends_a_found_speaker_to_the_dialogue() -> None:
    recognizer = ContextualNerRecognizer()
    text = "Soraya: Where were you?\nNote: none\nTalulah: At the station, waiting.\nSoraya: Fine."
    found = {text[r.start:r.end] for r in recognizer.analyze(text, DEFAULT_ENTITIES, artifacts(text, [(11, 12)]))}
    assert found == {"Talulah", "Soraya"}  # "Note" is a form label, not a speaker
    form = "Status: shipped today\nNote: box is damaged"
    assert recognizer.analyze(form, DEFAULT_ENTITIES, artifacts(form, [])) == []


def test_ner_reads_lower_case_text_with_proper_nouns_capitalised() -> None:
    analyzer = build_analyzer("ner", "en", *quality_recognizers("en"))
    text = "ok so i talked to mike yesterday and he said the deadline is friday"
    results = analyzer.analyze(text, language="en", entities=["PERSON"], score_threshold=DEFAULT_SCORE_THRESHOLD)
    assert [text[r.start:r.end] for r in results] == ["mike"]


def test_quality_recognizers_replace_what_they_improve() -> None:
    extra, remove = quality_recognizers("en")
    assert {type(r).__name__ for r in extra} == {
        "StreetAddressRecognizer", "PhoneNumberRecognizer", "CardNumberRecognizer", "PersonCueRecognizer",
        "PlaceCueRecognizer", "ContextualNerRecognizer", "RampartRecognizer"}
    assert "RampartRecognizer" not in {type(r).__name__ for r in quality_recognizers("en", "none")[0]}
    assert remove == ["PhoneRecognizer", "CreditCardRecognizer", "SpacyRecognizer"]
    assert "URL" not in DEFAULT_ENTITIES and "STREET_ADDRESS" in DEFAULT_ENTITIES
    assert all(0 < v <= 1 for v in [DEFAULT_SCORE_THRESHOLD, *DEFAULT_ENTITY_THRESHOLDS.values()])


@pytest.fixture(scope="module", params=["pattern", "ner"])
def analyzer(request: pytest.FixtureRequest) -> AnalyzerEngine:
    return build_analyzer(request.param, "en", *quality_recognizers("en"))


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a recognizer tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    yield


def test_analysis_stays_offline(analyzer: AnalyzerEngine, no_network: None) -> None:
    text = ("Mrs. Halvorsen (halvorsen@example.org, +47 22 12 34 56) lives at 42 Maple Grove, Apt. 7, Oslo; "
            "card 4111 1111 1111 1111, IBAN GB82 WEST 1234 5698 7654 32, IP 2001:db8::1.")
    results = analyzer.analyze(text, language="en", entities=DEFAULT_ENTITIES, score_threshold=DEFAULT_SCORE_THRESHOLD)
    found = {r.entity_type for r in results}
    assert {"EMAIL_ADDRESS", "PHONE_NUMBER", "STREET_ADDRESS", "CREDIT_CARD", "IBAN_CODE", "IP_ADDRESS"} <= found
    # Pattern mode promises no names: the cue recognizers stay silent there.
    assert ("PERSON" in found) == isinstance(analyzer.nlp_engine, SpacyNlpEngine)


def test_adjacent_cards_stay_apart() -> None:
    card = "4111 1111 1111 1111"
    text = f"{card} {card} and 378282246310005 {card}"
    assert kept(text, CardNumberRecognizer()) == [card, card, "378282246310005", card]
