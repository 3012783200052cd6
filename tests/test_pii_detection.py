"""guardproxy/guards/pii/detection.py: a text longer than spaCy takes at once is analysed in pieces."""

from __future__ import annotations

import pytest

from guardproxy.guards import GuardContext, Segment
from guardproxy.guards.pii import detection
from guardproxy.guards.pii.analyzer import shared_nlp_engine
from guardproxy.guards.pii.config import PiiConfig
from guardproxy.guards.pii.guard import PiiGuard
from guardproxy.guards.sentences import PIECE_CHARS

TAIL = "Please forward the report to Maria Gonzalez at maria.gonzalez@example.org by Friday."


@pytest.fixture(scope="module")
def guard() -> PiiGuard:
    pii = PiiGuard(PiiConfig(cache_size=0))
    pii.warm()
    return pii


def findings(guard: PiiGuard, text: str) -> list[tuple[str, str]]:
    return [(f.label, text[f.start:f.end]) for f in guard.scan([Segment(text)], GuardContext("input"))]


def test_pieces_are_below_the_models_limit() -> None:
    nlp = shared_nlp_engine("ner", "en").nlp["en"]  # type: ignore[attr-defined]
    assert nlp.max_length > PIECE_CHARS


def test_a_3_mb_message_is_analysed_in_pieces_and_finds_what_is_near_its_end(guard: PiiGuard) -> None:
    # Mostly spaces between short sentences: few tokens, so spaCy's NER over 3 MB stays quick.
    filler = "All reviewed." + " " * 1000
    text = "Call me on +1 415-555-0132. " + filler * (3_000_000 // len(filler) + 1) + TAIL
    assert len(text) > 3_000_000
    found = guard.scan([Segment(text)], GuardContext("input"))
    assert [(f.label, text[f.start:f.end]) for f in found] == [("PHONE_NUMBER", "+1 415-555-0132"),
                                                               ("PERSON", "Maria Gonzalez"),
                                                               ("EMAIL_ADDRESS", "maria.gonzalez@example.org")]
    assert found[-1].end == len(text) - len(" by Friday.")


def test_pieces_find_what_the_whole_text_finds(guard: PiiGuard, monkeypatch: pytest.MonkeyPatch) -> None:
    text = ("I am Wanda Okonkwo and my email is wanda.okonkwo@example.org. The servers at 192.168.14.7 were "
            "rebooted. Tomasz Wójcik called from 020 7946 0321 about it. " * 3 + TAIL)
    whole = findings(guard, text)
    monkeypatch.setattr(detection, "PIECE_CHARS", 120)
    assert findings(guard, text) == whole
    assert len(whole) >= 10
