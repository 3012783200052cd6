"""guard: grounding: where the context comes from, and how answers are cut into claims."""

from __future__ import annotations

from guardproxy.guards.base import GuardContext, Segment
from guardproxy.guards.grounding.claims import split_claims
from guardproxy.guards.grounding.config import Delimiters
from guardproxy.guards.grounding.sources import context_passages, delimited_passages

PROMPT = (
    Segment("You answer from the sources. <context>Passage from the system.</context>", ("messages", 0), "system"),
    Segment("<context>Passage from the user.</context> What? <context> </context>", ("messages", 1), "user"),
    Segment("Tool result text.", ("messages", 2), "tool"),
    Segment("<context>Not context: an assistant turn.</context>", ("messages", 3), "assistant"),
)
CONTEXT = GuardContext("output", documents=("Document one.", "  "), prompt=PROMPT)


def test_each_source_alone() -> None:
    delimiters = Delimiters()
    assert context_passages(CONTEXT, ["extension"], delimiters) == ["Document one."]
    assert context_passages(CONTEXT, ["tools"], delimiters) == ["Tool result text."]
    assert context_passages(CONTEXT, ["delimited"], delimiters) == [
        "Passage from the system.", "Passage from the user."]


def test_sources_in_the_order_listed() -> None:
    assert context_passages(CONTEXT, ["tools", "extension"], Delimiters()) == ["Tool result text.", "Document one."]


def test_custom_delimiters_and_unclosed_blocks() -> None:
    delimiters = Delimiters(open="[[", close="]]")
    assert delimited_passages("a [[one]] b [[two\nlines]] c [[unclosed", delimiters) == ["one", "two\nlines"]


def test_claims_are_sentences_with_exact_spans() -> None:
    text = "Paris is the capital of France. It has 2.1 million people!\nThe mayor is Anne Hidalgo."
    claims = split_claims(text, 12)
    assert [text[c.start : c.end] for c in claims] == [
        "Paris is the capital of France.", "It has 2.1 million people!", "The mayor is Anne Hidalgo."]


def test_short_sentences_join_a_neighbour() -> None:
    text = "Yes. The tower is 330 metres tall. Ok."
    assert [text[c.start : c.end] for c in split_claims(text, 12)] == ["Yes. The tower is 330 metres tall. Ok."]
    assert [(c.start, c.end) for c in split_claims("Kato", 12)] == [(0, 4)]
    assert split_claims("   ", 12) == []
