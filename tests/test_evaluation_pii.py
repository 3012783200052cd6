"""``guardproxy eval`` on PII spans: item and span level, ``--positive`` filters, type-aware figures."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_evaluation import eval_cli, eval_json, pii_rows, policy, write_jsonl

__all__ = ["policy"]  # the fixture, shared with test_evaluation


def test_pii_item_and_span_level(tmp_path: Path, policy: str, capsys: pytest.CaptureFixture[str]) -> None:
    data = write_jsonl(tmp_path / "pii.jsonl", pii_rows())
    result = eval_json(capsys, "--policy", policy, "--chain", "ssn", "--stage", "input", "--data", data)
    assert result["item"] == {"tp": 3, "fp": 1, "fn": 0, "tn": 1, "precision": 0.75, "recall": 1.0,
                              "f1": 0.8571, "accuracy": 0.8}
    assert result["spans"] == {"predicted": 4, "matched": 3, "gold": 5, "found": 3, "precision": 0.75,
                               "recall": 0.6, "f1": 0.6667, "positive_filter_on_predictions": False,
                               "guard_labels": ["PERSON", "US_SSN"]}
    assert result["per_label"] == {
        "PERSON": {"gold": 2, "found": 1, "recall": 0.5},
        "GPE": {"gold": 1, "found": 0, "recall": 0.0},
        "PHONE_NUMBER": {"gold": 1, "found": 1, "recall": 1.0},
        "US_SSN": {"gold": 1, "found": 1, "recall": 1.0},
    }
    assert list(result["per_label"]) == ["PERSON", "GPE", "PHONE_NUMBER", "US_SSN"]


def test_pii_positive_filters_predictions_when_labels_are_shared(
    tmp_path: Path, policy: str, capsys: pytest.CaptureFixture[str]
) -> None:
    data = write_jsonl(tmp_path / "pii.jsonl", pii_rows())
    result = eval_json(capsys, "--policy", policy, "--chain", "ssn", "--stage", "input", "--data", data,
                       "--positive", "US_SSN")
    # Bob's PERSON span no longer counts; the SSN-shaped phone number is now a false positive.
    assert (result["item"]["tp"], result["item"]["fp"], result["item"]["fn"], result["item"]["tn"]) == (1, 2, 0, 2)
    spans = result["spans"]
    assert (spans["predicted"], spans["matched"], spans["gold"], spans["found"]) == (3, 1, 1, 1)
    assert spans["positive_filter_on_predictions"] is True
    assert result["per_label"] == {"US_SSN": {"gold": 1, "found": 1, "recall": 1.0}}
    assert result["positive"] == ["US_SSN"]


def test_pii_positive_keeps_predictions_with_their_own_labels(
    tmp_path: Path, policy: str, capsys: pytest.CaptureFixture[str]
) -> None:
    data = write_jsonl(tmp_path / "pii.jsonl", pii_rows())
    result = eval_json(capsys, "--policy", policy, "--chain", "own_labels", "--stage", "input", "--data", data,
                       "--positive", "US_SSN")
    spans = result["spans"]
    assert spans["guard_labels"] == ["pattern:0"]
    assert spans["positive_filter_on_predictions"] is False
    assert (spans["predicted"], spans["matched"], spans["gold"], spans["found"]) == (3, 1, 1, 1)


def test_pii_same_span_from_two_guards_is_one_prediction(
    tmp_path: Path, policy: str, capsys: pytest.CaptureFixture[str]
) -> None:
    data = write_jsonl(tmp_path / "pii.jsonl", pii_rows())
    result = eval_json(capsys, "--policy", policy, "--chain", "twice", "--stage", "input", "--data", data)
    assert (result["spans"]["predicted"], result["spans"]["matched"]) == (3, 2)


def test_pii_text_report(tmp_path: Path, policy: str, capsys: pytest.CaptureFixture[str]) -> None:
    data = write_jsonl(tmp_path / "pii.jsonl", pii_rows())
    code, out, _ = eval_cli(capsys, "--policy", policy, "--chain", "ssn", "--stage", "input", "--data", data)
    assert code == 0
    assert "  predicted 4  matched 3  precision 0.750   gold 5  found 3  recall 0.600   f1 0.667" in out
    assert "guard labels: PERSON, US_SSN; --positive filter on predictions: not applied" in out
    assert any(line.split() == ["GPE", "1", "0", "0.000"] for line in out.splitlines())


def test_pii_type_aware_figures(tmp_path: Path, policy: str, capsys: pytest.CaptureFixture[str]) -> None:
    data = write_jsonl(tmp_path / "pii.jsonl", pii_rows())
    result = eval_json(capsys, "--policy", policy, "--chain", "ssn", "--stage", "input", "--data", data)
    # Gold types the guard can emit: PERSON, US_SSN. The SSN-shaped phone number is a US_SSN prediction on a
    # PHONE_NUMBER span (not a targeted type): wrong by type, though label-agnostic matching counted it right.
    assert result["typed"] == {"gold_types": ["PERSON", "US_SSN"], "predicted": 4, "correct": 2, "precision": 0.5,
                               "gold": 3, "found": 2, "recall": 0.6667, "f1": 0.5714, "unjudged": 0,
                               "aliases": {"LOCATION": ["GPE", "LOCATION", "STREET_ADDRESS"],
                                           "STREET_ADDRESS": ["GPE", "LOCATION", "STREET_ADDRESS"]}}
    assert result["per_type"] == {
        "US_SSN": {"predicted": 3, "correct": 1, "precision": 0.3333, "gold": 1, "found": 1, "recall": 1.0,
                   "f1": 0.5},
        "PERSON": {"predicted": 1, "correct": 1, "precision": 1.0, "gold": 2, "found": 1, "recall": 0.5,
                   "f1": 0.6667},
    }
    assert list(result["per_type"]) == ["PERSON", "US_SSN"]  # most gold first


def test_pii_type_aliases(tmp_path: Path, policy: str, capsys: pytest.CaptureFixture[str]) -> None:
    data = write_jsonl(tmp_path / "pii.jsonl", pii_rows())
    result = eval_json(capsys, "--policy", policy, "--chain", "places", "--stage", "input", "--data", data)
    # LOCATION on "Paris" matches gold GPE; LOCATION on "Bob" does not match gold PERSON.
    typed = result["typed"]
    assert (typed["gold_types"], typed["predicted"], typed["correct"], typed["gold"], typed["found"]) == (
        ["GPE"], 2, 1, 1, 1)
    assert result["per_type"] == {
        "GPE": {"predicted": 0, "correct": 0, "precision": None, "gold": 1, "found": 1, "recall": 1.0, "f1": None},
        "LOCATION": {"predicted": 2, "correct": 1, "precision": 0.5, "gold": 0, "found": 0, "recall": None,
                     "f1": None},
    }
    gpe = eval_json(capsys, "--policy", policy, "--chain", "places", "--stage", "input", "--data", data,
                    "--positive", "GPE")["spans"]
    # Label-agnostic figures keep the LOCATION spans too when --positive names GPE (its alias).
    assert (gpe["predicted"], gpe["matched"], gpe["gold"], gpe["found"]) == (2, 1, 1, 1)
    assert gpe["positive_filter_on_predictions"] is True
    narrowed = eval_json(capsys, "--policy", policy, "--chain", "places", "--stage", "input", "--data", data,
                         "--positive", "PERSON")["typed"]
    assert (narrowed["predicted"], narrowed["unjudged"], narrowed["gold"], narrowed["found"]) == (0, 2, 2, 0)
    assert (narrowed["precision"], narrowed["recall"]) == (None, 0.0)


def test_pii_type_aware_text_and_own_labels(tmp_path: Path, policy: str, capsys: pytest.CaptureFixture[str]) -> None:
    data = write_jsonl(tmp_path / "pii.jsonl", pii_rows())
    code, out, _ = eval_cli(capsys, "--policy", policy, "--chain", "ssn", "--stage", "input", "--data", data)
    assert code == 0
    lines = out.splitlines()
    assert "gold types: PERSON, US_SSN; predictions of other types (unjudged): 0" in out
    assert any(line.split() == ["all", "targeted", "types", "4", "2", "0.500", "3", "2", "0.667", "0.571"]
               for line in lines)
    assert any(line.split() == ["PERSON", "1", "1", "1.000", "2", "1", "0.500", "0.667"] for line in lines)
    own = eval_json(capsys, "--policy", policy, "--chain", "own_labels", "--stage", "input", "--data", data)
    assert "typed" not in own and "per_type" not in own
    code, out, _ = eval_cli(capsys, "--policy", policy, "--chain", "own_labels", "--stage", "input", "--data", data)
    assert "type-aware: not applicable (no guard label names a gold label)" in out
