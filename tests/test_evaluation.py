"""``guardproxy eval``: exact confusion counts on tiny labelled files whose answers are known by construction."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import pytest

from guardproxy.cli import run
from guardproxy.evaluation.datasets import LabelledSpan
from guardproxy.evaluation.scoring import Confusion, SpanScores, percentile
from guardproxy.guards import REGISTRY, Finding, GuardConfig, GuardContext, Segment

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"

POLICY = r"""
version: 1
name: evaltest
chains:
  default:
    input:
      - {guard: keywords, action: flag, terms: [badword]}
    output:
      - {guard: keywords, action: block, terms: [badword]}
  ssn:
    input:
      - {name: ssn, guard: keywords, action: redact, label: US_SSN, patterns: ['\d{3}-\d{2}-\d{4}']}
      - {name: bob, guard: keywords, action: flag, label: PERSON, terms: [Bob]}
  own_labels:
    input:
      - {guard: keywords, action: redact, patterns: ['\d{3}-\d{2}-\d{4}']}
  places:
    input:
      - {name: city, guard: keywords, action: flag, label: LOCATION, terms: [Paris]}
      - {name: misread, guard: keywords, action: flag, label: LOCATION, terms: [Bob]}
  twice:
    input:
      - {name: first, guard: keywords, action: redact, label: US_SSN, patterns: ['\d{3}-\d{2}-\d{4}']}
      - {name: second, guard: keywords, action: flag, label: US_SSN, patterns: ['\d{3}-\d{2}-\d{4}']}
"""

# A toxicity file: tp 3, fp 1, fn 2, tn 3 for a chain that flags "badword".
TOXICITY = [
    {"text": "you badword", "toxic": True},
    {"text": "badword again", "toxic": True},
    {"text": "BADWORD in capitals", "toxic": True},
    {"text": "mean but clean", "toxic": True},
    {"text": "rude without the word", "toxic": True},
    {"text": "quoting a badword politely", "toxic": False},
    {"text": "nice", "toxic": False},
    {"text": "hello", "toxic": False},
    {"text": "a badwordish compound is not the word", "toxic": False},
]


def span(text: str, part: str, label: str) -> dict[str, Any]:
    start = text.index(part)
    return {"start": start, "end": start + len(part), "label": label}


def pii_rows() -> list[dict[str, Any]]:
    one, two, four, five = "SSN 123-45-6789 for Ann", "call 555-12-3456 now", "order 999-99-9999", "Bob lives in Paris"
    return [
        {"text": one, "spans": [span(one, "123-45-6789", "US_SSN"), span(one, "Ann", "PERSON")]},
        {"text": two, "spans": [span(two, "555-12-3456", "PHONE_NUMBER")]},
        {"text": "nothing here", "spans": []},
        {"text": four, "spans": []},
        {"text": five, "spans": [span(five, "Bob", "PERSON"), span(five, "Paris", "GPE")]},
    ]


def write_jsonl(path: Path, rows: Sequence[dict[str, Any] | str]) -> str:
    path.write_text("".join((row if isinstance(row, str) else json.dumps(row)) + "\n" for row in rows))
    return str(path)


@pytest.fixture
def policy(tmp_path: Path) -> str:
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY)
    return str(path)


def eval_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = run(["eval", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def eval_json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, Any]:
    code, out, err = eval_cli(capsys, *argv, "--json")
    assert code == 0, err
    result: dict[str, Any] = json.loads(out)
    return result


def test_toxicity_counts_and_ratios(tmp_path: Path, policy: str, capsys: pytest.CaptureFixture[str]) -> None:
    data = write_jsonl(tmp_path / "tox.jsonl", TOXICITY)
    result = eval_json(capsys, "--policy", policy, "--stage", "input", "--data", data)
    assert result["item"] == {"tp": 3, "fp": 1, "fn": 2, "tn": 3, "precision": 0.75, "recall": 0.6,
                              "f1": 0.6667, "accuracy": 0.6667}
    assert (result["rows"], result["schema"], result["chain"], result["stage"]) == (9, "toxicity", "default", "input")
    assert re.fullmatch(r"evaltest@[0-9a-f]{12}", result["policy"])
    assert set(result) == {"data", "rows", "schema", "policy", "chain", "stage", "positive", "item", "latency_ms",
                           "failures"}
    assert set(result["latency_ms"]) == {"p50", "p95", "mean"}
    assert 0 <= result["latency_ms"]["p50"] <= result["latency_ms"]["p95"]
    assert result["failures"] == 0


def test_output_stage_blocks_count_as_firing(tmp_path: Path, policy: str, capsys: pytest.CaptureFixture[str]) -> None:
    data = write_jsonl(tmp_path / "tox.jsonl", TOXICITY)
    result = eval_json(capsys, "--policy", policy, "--stage", "output", "--data", data)
    assert (result["item"]["tp"], result["item"]["fp"], result["item"]["fn"], result["item"]["tn"]) == (3, 1, 2, 3)


def test_limit_reads_only_the_first_rows(tmp_path: Path, policy: str, capsys: pytest.CaptureFixture[str]) -> None:
    data = write_jsonl(tmp_path / "tox.jsonl", TOXICITY)
    result = eval_json(capsys, "--policy", policy, "--stage", "input", "--data", data, "--limit", "4")
    assert result["rows"] == 4
    assert (result["item"]["tp"], result["item"]["fn"], result["item"]["fp"], result["item"]["tn"]) == (3, 1, 0, 0)


def test_text_table_says_na_for_undefined_precision(
    tmp_path: Path, policy: str, capsys: pytest.CaptureFixture[str]
) -> None:
    data = write_jsonl(tmp_path / "inj.jsonl", [{"text": "ignore me", "injection": True},
                                                {"text": "hello", "injection": False}])
    code, out, _ = eval_cli(capsys, "--policy", policy, "--stage", "input", "--data", data)
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith(f"data: {data} (2 rows, schema injection)  policy: evaltest@")
    assert lines[0].endswith("chain: default stage: input")
    assert lines[1].split() == ["items", "tp", "fp", "fn", "tn", "precision", "recall", "f1", "accuracy"]
    assert lines[2].split() == ["all", "items", "2", "0", "0", "1", "1", "n/a", "0.000", "0.000", "0.500"]
    assert re.fullmatch(r"latency per item: p50 \d+\.\d{3} ms  p95 \d+\.\d{3} ms  mean \d+\.\d{3} ms"
                        r"   guard failures: 0", lines[3])
    result = eval_json(capsys, "--policy", policy, "--stage", "input", "--data", data)
    assert result["item"]["precision"] is None
    assert result["item"]["f1"] == 0.0


def test_topics_need_positive(tmp_path: Path, policy: str, capsys: pytest.CaptureFixture[str]) -> None:
    rows = [{"text": "badword transfer", "topic": "banking"}, {"text": "badword trip", "topic": "travel"},
            {"text": "my balance", "topic": "banking"}, {"text": "hi", "topic": "small_talk"}]
    data = write_jsonl(tmp_path / "topics.jsonl", rows)
    code, out, err = eval_cli(capsys, "--policy", policy, "--stage", "input", "--data", data)
    assert (code, out) == (2, "")
    assert "needs --positive" in err and "banking, small_talk, travel" in err
    result = eval_json(capsys, "--policy", policy, "--stage", "input", "--data", data, "--positive", "banking")
    assert (result["item"]["tp"], result["item"]["fp"], result["item"]["fn"], result["item"]["tn"]) == (1, 1, 1, 1)
    code, _, err = eval_cli(capsys, "--policy", policy, "--stage", "input", "--data", data, "--positive",
                            "bankin", "--json")
    assert code == 0 and "warning: --positive bankin does not occur" in err


class _NoSettings(GuardConfig):
    pass


class ContextProbe:
    """Fires when the answer is not a substring of the first document; remembers what it was given."""

    Config: ClassVar[type[GuardConfig]] = _NoSettings
    kind: ClassVar[str] = "inline"
    seen: ClassVar[list[tuple[tuple[Segment, ...], GuardContext]]] = []

    def __init__(self, config: GuardConfig) -> None:
        pass

    def warm(self) -> None:
        return None

    def scan(self, segments: Sequence[Segment], context: GuardContext) -> list[Finding]:
        ContextProbe.seen.append((tuple(segments), context))
        return [] if segments[0].text in context.documents[0] else [Finding("ungrounded", 1.0, 0)]


class Broken(ContextProbe):
    def scan(self, segments: Sequence[Segment], context: GuardContext) -> list[Finding]:
        raise RuntimeError("model went away")


@pytest.fixture
def probe_policy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setitem(REGISTRY, "context_probe", ContextProbe)
    monkeypatch.setitem(REGISTRY, "broken", Broken)
    monkeypatch.setattr(ContextProbe, "seen", [])
    path = tmp_path / "probe.yaml"
    path.write_text("""
version: 1
name: probe
chains:
  default:
    output: [{guard: context_probe, action: flag}]
  fail_closed:
    input: [{guard: broken, action: flag}]
  fail_open:
    input: [{guard: broken, action: flag, on_error: allow}]
""")
    return str(path)


def test_grounding_passes_context_and_splits_by_length(
    tmp_path: Path, probe_policy: str, capsys: pytest.CaptureFixture[str]
) -> None:
    context = "Paris is the capital of France. " * 3
    long_wrong = " ".join(["wrong"] * 12)
    long_right = " ".join(["right"] * 35)
    rows = [
        {"context": context, "question": "Capital of France?", "answer": "Paris", "grounded": True},
        {"context": context, "question": "Capital of France?", "answer": "Lyon", "grounded": False},
        {"context": context, "question": "Why?", "answer": long_wrong, "grounded": False},
        {"context": context, "question": "Why?", "answer": long_right, "grounded": True},
    ]
    data = write_jsonl(tmp_path / "grounding.jsonl", rows)
    result = eval_json(capsys, "--policy", probe_policy, "--stage", "output", "--data", data)
    assert (result["item"]["tp"], result["item"]["fp"], result["item"]["fn"], result["item"]["tn"]) == (2, 1, 0, 1)
    by_length = result["by_length"]
    assert list(by_length) == ["<=10 words", "11-30 words", ">30 words"]
    assert {k: (v["items"], v["tp"], v["fp"], v["fn"], v["tn"]) for k, v in by_length.items()} == {
        "<=10 words": (2, 1, 0, 0, 1), "11-30 words": (1, 1, 0, 0, 0), ">30 words": (1, 0, 1, 0, 0)}
    assert by_length[">30 words"]["recall"] is None
    segments, seen = ContextProbe.seen[0]
    assert segments == (Segment("Paris", ("text",), "assistant"),)
    assert seen.stage == "output"
    assert seen.documents == (context,)
    assert seen.prompt == (Segment("Capital of France?", ("question",), "user"),)
    code, out, _ = eval_cli(capsys, "--policy", probe_policy, "--stage", "output", "--data", data)
    assert code == 0 and "answer >30 words" in out


def test_guard_failures_are_counted(tmp_path: Path, probe_policy: str, capsys: pytest.CaptureFixture[str]) -> None:
    data = write_jsonl(tmp_path / "tox.jsonl", [{"text": "a", "toxic": True}, {"text": "b", "toxic": False}])
    closed = eval_json(capsys, "--policy", probe_policy, "--chain", "fail_closed", "--stage", "input", "--data", data)
    assert (closed["failures"], closed["item"]["tp"], closed["item"]["fp"]) == (2, 1, 1)
    opened = eval_json(capsys, "--policy", probe_policy, "--chain", "fail_open", "--stage", "input", "--data", data)
    assert (opened["failures"], opened["item"]["fn"], opened["item"]["tn"]) == (2, 1, 1)


@pytest.mark.parametrize(
    ("rows", "extra", "message"),
    [
        ([{"text": "a", "toxic": True}, "", "", '{"text": "b", toxic}'], [], r"tox\.jsonl:4: not valid JSON"),
        ([{"text": "a", "toxic": True}, {"text": "b"}], [], r"tox\.jsonl:2: 'toxic' must be a bool"),
        (['["a list"]'], [], r"tox\.jsonl:1: a row must be a JSON object"),
        ([{"text": "a", "label": 1}], [], r"tox\.jsonl:1: unknown schema \(keys: label, text\)"),
        ([{"text": "a", "spans": [{"start": 0, "end": 9, "label": "X"}]}], [], r"spans\[0\] \[0, 9\) is not inside"),
        ([], [], r"tox\.jsonl: no rows"),
        ([{"text": "a", "toxic": True}], ["--positive", "X"], r"--positive applies to pii and topics"),
        ([{"text": "a", "toxic": True}], ["--chain", "nope"], r"no chain named 'nope'; chains are: default, "),
        ([{"text": "a", "toxic": True}], ["--limit", "0"], r"--limit must be at least 1"),
    ],
)
def test_unusable_input_exits_2(
    tmp_path: Path, policy: str, capsys: pytest.CaptureFixture[str], rows: list[Any], extra: list[str], message: str
) -> None:
    data = write_jsonl(tmp_path / "tox.jsonl", rows)
    code, out, err = eval_cli(capsys, "--policy", policy, "--stage", "input", "--data", data, *extra)
    assert (code, out) == (2, "")
    assert re.search(message, err), err


def test_missing_files_exit_2(tmp_path: Path, policy: str, capsys: pytest.CaptureFixture[str]) -> None:
    missing = str(tmp_path / "absent.jsonl")
    code, _, err = eval_cli(capsys, "--policy", policy, "--stage", "input", "--data", missing)
    assert code == 2 and f"{missing}: no such file" in err
    data = write_jsonl(tmp_path / "tox.jsonl", TOXICITY)
    code, _, err = eval_cli(capsys, "--policy", str(tmp_path / "nope.yaml"), "--stage", "input", "--data", data)
    assert code == 2 and "no such file or directory" in err


def test_subprocess_json(tmp_path: Path, policy: str) -> None:
    data = write_jsonl(tmp_path / "tox.jsonl", TOXICITY)
    done = subprocess.run(
        [sys.executable, "-m", "guardproxy", "eval", "--policy", policy, "--stage", "input", "--data", data, "--json"],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert (result["item"]["tp"], result["item"]["fp"], result["item"]["fn"], result["item"]["tn"]) == (3, 1, 2, 3)
    bad = write_jsonl(tmp_path / "bad.jsonl", [{"text": "x", "toxic": True}, "{"])
    done = subprocess.run(
        [sys.executable, "-m", "guardproxy", "eval", "--policy", policy, "--stage", "input", "--data", bad],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert done.returncode == 2 and "bad.jsonl:2: not valid JSON" in done.stderr


@pytest.mark.skipif(not (SHARED_DATA / "injection_dev.jsonl").exists(), reason="../shared/data is not here")
def test_shared_injection_data_runs(capsys: pytest.CaptureFixture[str]) -> None:
    result = eval_json(capsys, "--policy", str(REPO / "policies"), "--stage", "input",
                       "--data", str(SHARED_DATA / "injection_dev.jsonl"), "--limit", "50")
    item = result["item"]
    assert result["rows"] == 50 == item["tp"] + item["fp"] + item["fn"] + item["tn"]


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(100, 0, -1)]
    assert (percentile(values, 50), percentile(values, 95), percentile([7.0], 95)) == (50.0, 95.0, 7.0)


def test_empty_ratios_are_none() -> None:
    assert (Confusion().precision, Confusion().recall, Confusion().f1, Confusion().accuracy) == (None,) * 4
    assert Confusion(tn=3).f1 is None and Confusion(fn=2).f1 == 0.0
    assert SpanScores(False, frozenset()).f1 is None
    assert SpanScores(False, frozenset(), gold=2).f1 == 0.0


def test_spans_that_only_touch_do_not_overlap() -> None:
    gold = LabelledSpan(4, 15, "US_SSN")
    assert not LabelledSpan(0, 4, "x").overlaps(gold) and not LabelledSpan(15, 20, "x").overlaps(gold)
    assert LabelledSpan(0, 5, "x").overlaps(gold) and LabelledSpan(14, 20, "x").overlaps(gold)
    assert LabelledSpan(6, 7, "x").overlaps(gold) and gold.overlaps(LabelledSpan(6, 7, "x"))
