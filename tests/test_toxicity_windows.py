"""guardproxy/guards/toxicity/windows.py: sentence windows and their spans."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from guardproxy.guards.toxicity.windows import ScoringWindow, sentence_windows


def texts_of(text: str, limit: int = 200) -> list[str]:
    return [text[w.start:w.end] for w in sentence_windows(text, limit)]


def test_sentences_are_split_on_punctuation_and_line_breaks() -> None:
    text = "The first sentence is here. Is this the second one? Yes!\nA new line starts here"
    assert texts_of(text) == ["The first sentence is here.", "Is this the second one? Yes!",
                              "A new line starts here"]


def test_short_fragments_join_their_neighbour() -> None:
    assert texts_of("Ok. That is what we will do tomorrow.") == ["Ok. That is what we will do tomorrow."]


def test_a_long_sentence_is_cut_at_whitespace_within_the_limit() -> None:
    text = " ".join(["word"] * 100)
    windows = sentence_windows(text, 60)
    assert all(w.end - w.start <= 60 for w in windows)
    assert all(not text[w.start:w.end].startswith(" ") for w in windows)
    assert " ".join(text[w.start:w.end] for w in windows) == text


def test_blank_text_has_no_windows() -> None:
    assert sentence_windows("  \n\n ", 200) == []


@given(st.text(alphabet=st.sampled_from("ab .!?\n"), max_size=300))
def test_windows_are_ordered_non_overlapping_and_cover_every_visible_character(text: str) -> None:
    windows = sentence_windows(text, 50)
    previous_end = 0
    for window in windows:
        assert isinstance(window, ScoringWindow)
        assert previous_end <= window.start < window.end <= len(text)
        assert window.end - window.start <= 50
        previous_end = window.end
    covered = {i for w in windows for i in range(w.start, w.end)}
    assert all(i in covered for i, ch in enumerate(text) if not ch.isspace())
