"""``guardproxy review``, and its reviewed file as an eval data set and as policy test cases."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from guardproxy.cli import run
from guardproxy.evaluation.datasets import DatasetError, read_dataset
from tests.audit_trails import guard, record, write_trail

POLICY = """version: 1
name: live
chains:
  default:
    input:
      - {name: injection, guard: keywords, action: block, label: prompt_injection, terms: [ignore previous]}
      - {name: names, guard: keywords, action: redact, label: PERSON, terms: [Alice]}
      - {name: rude, guard: keywords, action: flag, label: rude, terms: [stupid]}
    output:
      - {name: promises, guard: keywords, action: flag, label: promise, terms: [guaranteed]}
"""


def _trail(path: Path) -> Path:
    """Texts as the trail stores them: every span a live guard found is masked."""
    return write_trail(path, [
        record("r1", "pass", {"input": "pass", "output": "pass"}, text={"input": "hello", "output": "hi"}),
        record("r2", "blocked", {"input": "blocked"}, [guard("input", "injection", ["prompt_injection"])],
               text={"input": "[prompt_injection] rules"}),
        record("r3", "redacted", {"input": "redacted", "output": "flagged"},
               [guard("input", "names", ["PERSON"], action="redact"),
                guard("output", "promises", ["promise"], action="flag")],
               text={"input": "hi <PERSON_1>", "output": "returns are [promise]"}),
        record("r4", "flagged", {"input": "flagged"}, [guard("input", "rude", ["rude"], action="flag")],
               text={"input": "a [rude] question"}),
        record("r5", "blocked", {"input": "blocked"}, [guard("input", "injection", ["prompt_injection"])]),
    ])


def _rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_review_exports_each_stage_that_did_not_pass(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "review.jsonl"
    assert run(["review", "--audit", str(_trail(tmp_path / "audit.jsonl")), "--out", str(out)]) == 0
    assert "5 rows to review from 4 of 5 records" in capsys.readouterr().out
    rows = _rows(out)
    assert [(r["meta"]["request_id"], r["stage"], r["predicted"]["verdict"]) for r in rows] == [
        ("r2", "input", "blocked"), ("r3", "input", "redacted"), ("r3", "output", "flagged"),
        ("r4", "input", "flagged"), ("r5", "input", "blocked")]
    assert rows[1] == {
        "text": "hi <PERSON_1>", "stage": "input",
        "predicted": {"verdict": "redacted", "fired": [{"entry": "names", "guard": "keywords", "label": "PERSON",
                                                        "action": "redact", "mode": "enforce"}]},
        "gold": None,
        "meta": {"source": "audit", "request_id": "r3", "time": "2026-12-01T10:00:00.000Z", "policy": "live",
                 "policy_version": "v1", "chain": "default", "api": "chat", "model": "gpt-4o-mini"}}
    assert rows[4]["text"] is None  # the trail stored no text for r5


def _reviewed(tmp_path: Path) -> Path:
    """The export with gold set: r2 right, r3 input right, r4 wrong (a false flag); r3 output and r5 unreviewed."""
    exported = tmp_path / "review.jsonl"
    assert run(["review", "--audit", str(_trail(tmp_path / "audit.jsonl")), "--out", str(exported)]) == 0
    gold = {("r2", "input"): "blocked", ("r3", "input"): {"verdict": "redacted", "labels": ["PERSON"]},
            ("r4", "input"): "pass", ("r5", "input"): "blocked"}
    rows = _rows(exported)
    for row in rows:
        row["gold"] = gold.get((row["meta"]["request_id"], row["stage"])) if row["stage"] == "input" else None
    reviewed = tmp_path / "reviewed.jsonl"
    reviewed.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return reviewed


def test_eval_on_a_reviewed_file_gives_precision_per_entry(tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    reviewed = _reviewed(tmp_path)
    policy = tmp_path / "p.yaml"
    policy.write_text(POLICY)
    capsys.readouterr()
    assert run(["eval", "--policy", str(policy), "--data", str(reviewed), "--stage", "input", "--json"]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert figures["schema"] == "review" and figures["rows"] == 3
    assert figures["skipped"] == {"no text in the trail": 1, "other stage (output)": 1}
    assert figures["review"] == {
        "rows": 3, "verdict_agrees": 2, "verdict_accuracy": 0.6667,
        "per_entry": {"injection": {"fired": 1, "correct": 1, "precision": 1.0},
                      "names": {"fired": 1, "correct": 1, "precision": 1.0},  # all three credited from marks
                      "rude": {"fired": 1, "correct": 0, "precision": 0.0}}}
    assert figures["item"]["tp"] == 2 and figures["item"]["fp"] == 1
    assert run(["eval", "--policy", str(policy), "--data", str(reviewed), "--stage", "input"]) == 0
    text = capsys.readouterr().out
    assert "skipped rows: 1 no text in the trail, 1 other stage (output)" in text
    assert "verdict as reviewed 2/3" in text and "rude" in text


def test_unreviewed_rows_are_counted_not_silently_dropped(tmp_path: Path) -> None:
    exported = tmp_path / "review.jsonl"
    assert run(["review", "--audit", str(_trail(tmp_path / "audit.jsonl")), "--out", str(exported)]) == 0
    skipped = r"no rows to score \(skipped: 1 no text in the trail, 1 other stage \(output\), 3 unreviewed"
    with pytest.raises(DatasetError, match=skipped):
        read_dataset(exported, None, None, "input")
    rows = _rows(exported)
    rows[0]["gold"] = "blocked"
    exported.write_text("".join(json.dumps(row) + "\n" for row in rows))
    dataset = read_dataset(exported, None, None, "input")
    assert len(dataset.items) == 1 and dataset.skipped == {"no text in the trail": 1, "other stage (output)": 1,
                                                           "unreviewed (gold null)": 2}


def test_a_bad_gold_names_the_line(tmp_path: Path) -> None:
    reviewed = _reviewed(tmp_path)
    lines = reviewed.read_text().splitlines()
    row = json.loads(lines[1])
    row["gold"] = "maybe"
    lines[1] = json.dumps(row)
    reviewed.write_text("\n".join(lines) + "\n")
    with pytest.raises(DatasetError, match=rf"{reviewed}:2: 'gold' must be null"):
        read_dataset(reviewed, None, None, "input")


def test_policy_test_runs_reviewed_rows_as_cases(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    reviewed = _reviewed(tmp_path)
    policy = tmp_path / "p.yaml"
    policy.write_text(POLICY)
    capsys.readouterr()
    assert run(["test", "--policy", str(policy), str(reviewed)]) == 1  # r4: reviewed pass, the policy flags it
    out = capsys.readouterr().out
    assert "skipped 1 no text in the trail, 1 unreviewed (gold null)" in out
    assert "FAIL" in out and "line 4 (r4, input): verdict: expected pass, got flagged" in out
    assert "2/3 passed" in out and "2/3 tests passed" in out
    fixed = tmp_path / "fixed.yaml"  # the false flag's entry removed
    rude = "      - {name: rude, guard: keywords, action: flag, label: rude, terms: [stupid]}\n"
    fixed.write_text(POLICY.replace(rude, ""))
    assert run(["test", "--policy", str(fixed), str(reviewed)]) == 0
    assert "3/3 tests passed" in capsys.readouterr().out


def test_reviewed_file_without_policy_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    reviewed = _reviewed(tmp_path)
    capsys.readouterr()
    assert run(["test", str(reviewed)]) == 2
    assert "a reviewed JSONL file is run against --policy PATH" in capsys.readouterr().err


def test_an_unreadable_trail_leaves_no_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    trail = _trail(tmp_path / "audit.jsonl")
    with trail.open("a") as lines:
        lines.write('{"v": 1, "time": "2026-12-01T10:00:00Z"}\n')
    out = tmp_path / "review.jsonl"
    assert run(["review", "--audit", str(trail), "--out", str(out)]) == 2
    assert f"{trail}:6: missing 'guards'" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["audit.jsonl"]
