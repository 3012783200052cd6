"""The Rampart token classifier: names and places in handwritten text, offsets into the text as given."""

from __future__ import annotations

import itertools

import pytest

from guardproxy.guards.base import GuardContext, Segment
from guardproxy.guards.pii import rampart
from guardproxy.guards.pii.config import PiiConfig
from guardproxy.guards.pii.guard import PiiGuard
from guardproxy.guards.pii.rampart import (
    TaggedSpan,
    TaggedWord,
    join_words,
    plan_windows,
    shared_tagger,
    union_overlaps,
)


def found(text: str) -> set[tuple[str, str]]:
    return {(span.entity, text[span.start:span.end]) for span in shared_tagger().tag(text)}


def test_model_files_ship_with_the_package_and_their_notice() -> None:
    for path in (rampart.MODEL_PATH, rampart.TOKENIZER_PATH, rampart.CONFIG_PATH):
        assert path.is_file()
    notice = (rampart.DATA / "NOTICE").read_text(encoding="utf-8")
    assert "National Design Studio" in notice and "creativecommons.org/licenses/by/4.0" in notice
    assert (rampart.DATA / "rampart_LICENSE").is_file()


def test_names_and_places_in_a_sentence() -> None:
    text = "Please forward the contract to Harriet Oyelaran, who moved from Leeds to Toronto last year."
    spans = found(text)
    assert ("PERSON", "Harriet Oyelaran") in spans
    assert ("LOCATION", "Leeds") in spans
    assert ("LOCATION", "Toronto") in spans


def test_names_in_lower_case_text() -> None:
    assert ("PERSON", "peter mwangi") in found("can you remind peter mwangi about the dentist on friday")


def test_no_names_in_plain_prose() -> None:
    assert found("The quarterly report is attached; please check the totals before the meeting.") == set()


@pytest.mark.parametrize("text", ["", "   \n\t", "!!! ???", "\u200b"])
def test_empty_and_blank_texts_find_nothing(text: str) -> None:
    assert shared_tagger().tag(text) == []


PREFIXES = ["", "😀 ", "Ünïcödé — 你好, ", "e\u0301\u0301 ", "\U0001f469\u200d\U0001f469\u200d\U0001f467 "]


@pytest.mark.parametrize("prefix", PREFIXES)
def test_offsets_index_the_text_as_given(prefix: str) -> None:
    text = f"{prefix}Yesterday I met Benedikt Schäfer in Zürich."
    spans = shared_tagger().tag(text)
    assert any(s.entity == "PERSON" and text[s.start:s.end] == "Benedikt Schäfer" for s in spans)
    for span in spans:
        assert text[span.start:span.end] == text[span.start:span.end].strip()
        assert 0 <= span.start < span.end <= len(text)


def test_a_long_text_is_read_in_windows_and_keeps_offsets() -> None:
    filler = "The meeting notes were filed without further comment. " * 60
    text = f"{filler}Afterwards Marguerite Delacroix called from Lyon. {filler}"
    spans = shared_tagger().tag(text)
    assert any(s.entity == "PERSON" and text[s.start:s.end] == "Marguerite Delacroix" for s in spans)


def test_windows_cover_every_token_and_start_on_a_word() -> None:
    word_ids = [i // 3 for i in range(1000)]  # every word is three tokens
    windows = plan_windows(word_ids, 256, 32)
    assert windows[0][0] == 0 and windows[-1][1] == 1000
    for (start, end), (following, _) in itertools.pairwise(windows):
        assert start < following < end and word_ids[following] != word_ids[following - 1]
        assert end - start <= 256


def test_a_given_name_and_a_surname_join_but_other_words_tagged_b_do_not() -> None:
    text = "Ann Lee Bo Kim"
    words = [TaggedWord(0, 3, "GIVEN_NAME", True, 0.9), TaggedWord(4, 7, "SURNAME", True, 0.8),
             TaggedWord(8, 10, "GIVEN_NAME", True, 0.9), TaggedWord(11, 14, "GIVEN_NAME", True, 0.9)]
    assert join_words(text, words) == [TaggedSpan(0, 7, "PERSON", 0.8), TaggedSpan(8, 10, "PERSON", 0.9),
                                       TaggedSpan(11, 14, "PERSON", 0.9)]


def test_unlikely_words_end_a_span() -> None:
    words = [TaggedWord(0, 3, "GIVEN_NAME", True, 0.9), TaggedWord(4, 7, "SURNAME", False, 0.3)]
    assert join_words("Ann Lee", words) == [TaggedSpan(0, 3, "PERSON", 0.9)]


def test_a_name_seen_by_two_windows_is_one_span() -> None:
    spans = [TaggedSpan(10, 20, "PERSON", 0.7), TaggedSpan(12, 25, "PERSON", 0.9), TaggedSpan(30, 35, "LOCATION", 0.8)]
    assert union_overlaps(spans) == [TaggedSpan(10, 25, "PERSON", 0.9), TaggedSpan(30, 35, "LOCATION", 0.8)]


def labels(config: PiiConfig, text: str) -> dict[str, str]:
    guard = PiiGuard(config)
    return {text[f.start:f.end]: f.label for f in guard.scan([Segment(text)], GuardContext("input"))}


def test_the_guard_adds_the_model_names_by_default_and_not_with_names_model_none() -> None:
    text = "pls ask tomasz wieczorek to call me back"
    assert labels(PiiConfig(), text).get("tomasz wieczorek") == "PERSON"
    assert "tomasz wieczorek" not in labels(PiiConfig(names_model="none"), text)


def test_pattern_mode_never_reports_model_names() -> None:
    assert labels(PiiConfig(nlp="pattern"), "Harriet Oyelaran lives in Leeds") == {}
