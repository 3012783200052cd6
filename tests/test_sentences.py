"""guardproxy/guards/sentences.py: the one sentence splitter, the stream's sentence ends, pieces under a limit."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from guardproxy.guards.sentences import completed_sentence_ends, sentence_spans, strip_span, text_pieces


def sentences(text: str) -> list[str]:
    return [text[start:end] for start, end in sentence_spans(text)]


def test_sentences_end_at_punctuation_before_whitespace_and_at_line_breaks() -> None:
    assert sentences("Hi there.  Book a flight!\nThanks") == ["Hi there.", "Book a flight!", "Thanks"]
    assert sentences("Is this it? Yes!\n\n  A new line starts here") == ["Is this it?", "Yes!",
                                                                        "A new line starts here"]


def test_closing_quotes_and_brackets_stay_with_their_sentence() -> None:
    assert sentences('He said "stop." Then (it ended.) The end') == ['He said "stop."', "Then (it ended.)",
                                                                       "The end"]
    assert sentences("これはペンです。 次の文") == ["これはペンです。", "次の文"]


def test_punctuation_without_whitespace_after_it_ends_nothing_but_a_run_of_it_before_a_word() -> None:
    assert sentences("Pi is 3.14 and example.com is a site.Really") == ["Pi is 3.14 and example.com is a site.Really"]
    assert sentences("Corrupt through....her house. Really?!OK 1..5") == ["Corrupt through....", "her house.",
                                                                          "Really?!", "OK 1..5"]


def test_a_period_after_a_title_ends_nothing_and_after_an_initial_only_before_a_capital() -> None:
    assert sentences("He got a B.S. in 1993 in the U.S. and left. Dr. Lee agreed, e.g. here. It did.") == [
        "He got a B.S. in 1993 in the U.S. and left.", "Dr. Lee agreed, e.g. here.", "It did."]
    assert sentences("He was born in the U.S. He left.") == ["He was born in the U.S.", "He left."]
    assert completed_sentence_ends("Born in the U.S. ") == []  # a capital may still follow
    assert sentences("Do the same. ADMIN. Yes! OK? No. At Bob's. Then") == ["Do the same.", "ADMIN.", "Yes!", "OK?",
                                                                            "No.", "At Bob's.", "Then"]


def test_blank_text_has_no_sentences() -> None:
    assert sentence_spans("") == [] and sentence_spans(" \n\t ") == []


def test_completed_sentence_ends_are_where_the_next_sentence_starts() -> None:
    text = "One. Two!  Three"
    assert completed_sentence_ends(text) == [5, 11]
    assert completed_sentence_ends(text, 5) == [11]
    assert completed_sentence_ends("A streamed sentence.") == []  # the next character may still arrive
    assert completed_sentence_ends(text, 0, 9) == [5]  # up to "Two!": no whitespace after it yet


def test_strip_span() -> None:
    assert strip_span("  ab c \n", 0, 8) == (2, 6)
    assert strip_span("   ", 0, 3) == (3, 3)


def test_pieces_are_cut_after_a_sentence_then_at_whitespace_then_anywhere() -> None:
    text = "First sentence here. Second one is longer than that"
    assert [text[a:b] for a, b in text_pieces(text, 25)] == ["First sentence here. ", "Second one is longer ",
                                                             "than that"]
    assert text_pieces("x" * 25, 10) == [(0, 10), (10, 20), (20, 25)]
    assert text_pieces("", 10) == [(0, 0)] and text_pieces("short", 10) == [(0, 5)]
    with pytest.raises(ValueError):
        text_pieces("abc", 1)


@given(st.text(alphabet=st.sampled_from("ab .!?\n\")"), max_size=300))
def test_sentences_are_ordered_stripped_and_cover_every_visible_character(text: str) -> None:
    spans = sentence_spans(text)
    previous_end = 0
    for start, end in spans:
        assert previous_end <= start < end <= len(text)
        assert not text[start].isspace() and not text[end - 1].isspace()
        previous_end = end
    covered = {i for start, end in spans for i in range(start, end)}
    assert all(i in covered for i, ch in enumerate(text) if not ch.isspace())


@given(st.text(alphabet=st.sampled_from("ab .\n"), max_size=400), st.integers(min_value=2, max_value=60))
def test_pieces_are_contiguous_within_the_limit_and_cover_the_text(text: str, limit: int) -> None:
    pieces = text_pieces(text, limit)
    assert pieces[0][0] == 0 and pieces[-1][1] == len(text)
    assert all(a[1] == b[0] for a, b in itertools.pairwise(pieces))
    assert all(0 < end - start <= limit for start, end in pieces) or text == ""
