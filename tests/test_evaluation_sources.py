"""Figures per source (``meta.source``) in ``guardproxy eval``, and the leave-one-source-out harness
(``benchmarks/loso.py``), on tiny files and tasks whose answers are worked out by hand."""

from __future__ import annotations

import json
import re
import sys
import types
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from guardproxy.evaluation.datasets import source_name
from tests.test_evaluation import REPO, eval_cli, eval_json, policy, probe_policy, span, write_jsonl

sys.path.append(str(REPO / "benchmarks"))  # the benchmarks import each other by name, as when run as scripts
import loso
import loso_cache

__all__ = ["policy", "probe_policy"]  # fixtures, shared with test_evaluation


def meta(source: str) -> dict[str, Any]:
    return {"meta": {"source": source, "id": 1}}


# The keywords chain flags "badword". Per source (rows interleaved, so grouping is not by position):
#   OLID         tp 1, fp 1, fn 1, tn 1
#   ToxiGen      tp 2, tn 1 (two files of one data set)
#   HateCheck    fn 1, tn 1
#   no source    fp 1
TOXICITY = [
    {"text": "you badword", "toxic": True, **meta("OLID v1.0 via someone/repo")},
    {"text": "badword again", "toxic": True, **meta("microsoft/TOXIGEN prompts/hate_a_1k.txt")},
    {"text": "mean but clean", "toxic": True, **meta("OLID v1.0 via someone/repo")},
    {"text": "rude without the word", "toxic": True, **meta("paul-rottger/hatecheck-data:test_suite_cases.csv")},
    {"text": "nice", "toxic": False, **meta("OLID v1.0 via someone/repo")},
    {"text": "BADWORD in capitals", "toxic": True, **meta("microsoft/TOXIGEN prompts/hate_b_1k.txt")},
    {"text": "quoting a badword politely", "toxic": False, **meta("OLID v1.0 via someone/repo")},
    {"text": "hello", "toxic": False, **meta("microsoft/TOXIGEN prompts/neutral_a_1k.txt")},
    {"text": "a badwordish compound", "toxic": False, **meta("paul-rottger/hatecheck-data:test_suite_cases.csv")},
    {"text": "badword without a source", "toxic": False},
]


def confusion(tp: int, fp: int, fn: int, tn: int, precision: float | None, recall: float | None, f1: float | None,
              accuracy: float | None) -> dict[str, Any]:
    return {"tp": tp, "fp": fp, "fn": fn, "tn": tn, "precision": precision, "recall": recall, "f1": f1,
            "accuracy": accuracy}


def test_toxicity_figures_per_source(tmp_path: Path, policy: str, capsys: pytest.CaptureFixture[str]) -> None:
    data = write_jsonl(tmp_path / "tox.jsonl", TOXICITY)
    result = eval_json(capsys, "--policy", policy, "--stage", "input", "--data", data)
    assert result["item"] == confusion(3, 2, 2, 3, 0.6, 0.6, 0.6, 0.6)
    per_source = result["per_source"]
    assert list(per_source) == ["OLID", "microsoft/TOXIGEN", "paul-rottger/hatecheck-data", "(no source)"]
    assert {name: (part["rows"], part["item"]) for name, part in per_source.items()} == {
        "OLID": (4, confusion(1, 1, 1, 1, 0.5, 0.5, 0.5, 0.5)),
        "microsoft/TOXIGEN": (3, confusion(2, 0, 0, 1, 1.0, 1.0, 1.0, 1.0)),
        "paul-rottger/hatecheck-data": (2, confusion(0, 0, 1, 1, None, 0.0, 0.0, 0.5)),
        "(no source)": (1, confusion(0, 1, 0, 0, 0.0, None, 0.0, 0.0)),
    }
    assert set(per_source["OLID"]) == {"rows", "item", "latency_ms", "failures"}
    assert set(result) == {"data", "rows", "schema", "policy", "chain", "stage", "positive", "item", "latency_ms",
                           "failures", "per_source"}


def test_toxicity_text_table_per_source(tmp_path: Path, policy: str, capsys: pytest.CaptureFixture[str]) -> None:
    data = write_jsonl(tmp_path / "tox.jsonl", TOXICITY)
    code, out, _ = eval_cli(capsys, "--policy", policy, "--stage", "input", "--data", data)
    assert code == 0
    rows = [line.split() for line in out.splitlines()]
    assert rows[1] == ["items", "tp", "fp", "fn", "tn", "precision", "recall", "f1", "accuracy"]
    assert rows[2] == ["all", "items", "10", "3", "2", "2", "3", "0.600", "0.600", "0.600", "0.600"]
    assert rows[3] == ["source", "OLID", "4", "1", "1", "1", "1", "0.500", "0.500", "0.500", "0.500"]
    assert rows[5] == ["source", "paul-rottger/hatecheck-data", "2", "0", "0", "1", "1", "n/a", "0.000", "0.000",
                       "0.500"]
    assert rows[6][:3] == ["source", "(no", "source)"]
    assert out.splitlines()[7].startswith("latency per item: ")
    # The long names widen the first column, so the figures stay in their columns.
    header, first = out.splitlines()[1], out.splitlines()[2]
    assert header.index("items") + len("items") == first.index("10") + len("10")


def test_no_source_no_per_source(tmp_path: Path, policy: str, capsys: pytest.CaptureFixture[str]) -> None:
    rows = [{key: value for key, value in row.items() if key != "meta"} for row in TOXICITY]
    data = write_jsonl(tmp_path / "tox.jsonl", rows)
    assert "per_source" not in eval_json(capsys, "--policy", policy, "--stage", "input", "--data", data)
    _, out, _ = eval_cli(capsys, "--policy", policy, "--stage", "input", "--data", data)
    assert [line.split()[0] for line in out.splitlines()] == ["data:", "items", "all", "latency"]


def test_topics_per_source(tmp_path: Path, policy: str, capsys: pytest.CaptureFixture[str]) -> None:
    rows = [{"text": "badword transfer", "topic": "banking", **meta("clinc/oos-eval data/data_full.json")},
            {"text": "badword top up", "topic": "top_ups", **meta("banking77")},
            {"text": "my balance", "topic": "banking", **meta("clinc/oos-eval data/data_full.json")},
            {"text": "my card", "topic": "cards", **meta("banking77")}]
    data = write_jsonl(tmp_path / "topics.jsonl", rows)
    result = eval_json(capsys, "--policy", policy, "--stage", "input", "--data", data, "--positive", "banking")
    assert {name: part["item"] for name, part in result["per_source"].items()} == {
        "clinc/oos-eval": confusion(1, 0, 1, 0, 1.0, 0.5, 0.6667, 0.5),
        "banking77": confusion(0, 1, 0, 1, 0.0, None, 0.0, 0.5),
    }


def test_grounding_per_source_keeps_length_buckets(
    tmp_path: Path, probe_policy: str, capsys: pytest.CaptureFixture[str]
) -> None:
    context = "Paris is the capital of France."
    long_right = " ".join(["Paris"] * 12)
    rows = [
        {"answer": "Paris", "grounded": True, **meta("RUCAIBox/HaluEval x")},
        {"answer": "Lyon", "grounded": False, **meta("ryokamoi/wice a")},
        {"answer": long_right, "grounded": True, **meta("ryokamoi/wice b")},
    ]
    rows = [{"context": context, "question": "Capital?", **row} for row in rows]
    data = write_jsonl(tmp_path / "grounding.jsonl", rows)
    result = eval_json(capsys, "--policy", probe_policy, "--stage", "output", "--data", data)
    wice = result["per_source"]["ryokamoi/wice"]
    assert (wice["rows"], wice["item"]["tp"], wice["item"]["fp"], wice["item"]["fn"], wice["item"]["tn"]) == (
        2, 1, 1, 0, 0)  # the long answer repeats "Paris" with spaces, which the probe does not find verbatim
    assert {name: bucket["items"] for name, bucket in wice["by_length"].items()} == {
        "<=10 words": 1, "11-30 words": 1, ">30 words": 0}
    assert result["per_source"]["RUCAIBox/HaluEval"]["item"]["tn"] == 1


def pii_source_rows() -> list[dict[str, Any]]:
    one, two = "Bob lives here", "Ann has SSN 123-45-6789"
    return [
        {"text": one, "spans": [span(one, "Bob", "PERSON")], **meta("setA")},
        {"text": two, "spans": [span(two, "Ann", "PERSON"), span(two, "123-45-6789", "US_SSN")], **meta("setB")},
    ]


def test_pii_per_source_judges_every_source_by_the_same_types(
    tmp_path: Path, policy: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # The guard emits PERSON only in setA. Judged alone, setB's guard labels would be US_SSN only and its PERSON
    # miss would not count; the rules of the whole data set apply to each source instead.
    data = write_jsonl(tmp_path / "pii.jsonl", pii_source_rows())
    result = eval_json(capsys, "--policy", policy, "--chain", "ssn", "--stage", "input", "--data", data)
    set_b = result["per_source"]["setB"]
    assert set_b["typed"]["gold_types"] == ["PERSON", "US_SSN"]
    assert (set_b["typed"]["gold"], set_b["typed"]["found"], set_b["typed"]["recall"]) == (2, 1, 0.5)
    assert set_b["per_type"]["PERSON"] == {"predicted": 0, "correct": 0, "precision": None, "gold": 1, "found": 0,
                                           "recall": 0.0, "f1": None}
    assert set_b["spans"]["guard_labels"] == ["PERSON", "US_SSN"]
    assert (set_b["spans"]["predicted"], set_b["spans"]["gold"], set_b["spans"]["found"]) == (1, 2, 1)
    assert set_b["per_label"] == {"PERSON": {"gold": 1, "found": 0, "recall": 0.0},
                                  "US_SSN": {"gold": 1, "found": 1, "recall": 1.0}}
    set_a = result["per_source"]["setA"]
    assert (set_a["typed"]["predicted"], set_a["typed"]["correct"], set_a["typed"]["recall"]) == (1, 1, 1.0)
    assert result["typed"]["recall"] == pytest.approx(2 / 3, abs=1e-4)


def test_pii_text_per_source(tmp_path: Path, policy: str, capsys: pytest.CaptureFixture[str]) -> None:
    data = write_jsonl(tmp_path / "pii.jsonl", pii_source_rows())
    code, out, _ = eval_cli(capsys, "--policy", policy, "--chain", "ssn", "--stage", "input", "--data", data)
    assert code == 0
    lines = out.splitlines()
    spans = lines.index("spans per source (label-agnostic):")
    assert [line.split() for line in lines[spans + 2:spans + 4]] == [
        ["setA", "1", "1", "1.000", "1", "1", "1.000", "1.000"],
        ["setB", "1", "1", "1.000", "2", "1", "0.500", "0.667"]]
    typed = lines.index("type-aware spans per source (the source's targeted types, then each type):")
    assert [line.split() for line in lines[typed + 2:-1]] == [
        ["setA", "1", "1", "1.000", "1", "1", "1.000", "1.000"],
        ["PERSON", "1", "1", "1.000", "1", "1", "1.000", "1.000"],
        ["setB", "1", "1", "1.000", "2", "1", "0.500", "0.667"],
        ["US_SSN", "1", "1", "1.000", "1", "1", "1.000", "1.000"],
        ["PERSON", "0", "0", "n/a", "1", "0", "0.000", "n/a"]]


@pytest.mark.parametrize(
    ("raw", "name"),
    [("OLID v1.0 (OffensEval 2019) via bertav6/Project", "OLID"),
     ("microsoft/TOXIGEN prompts/hate_lgbtq_1k.txt", "microsoft/TOXIGEN"),
     ("paul-rottger/hatecheck-data:test_suite_cases.csv", "paul-rottger/hatecheck-data"),
     ("banking77", "banking77"), ("  wnut17-emerging.test.annotated ", "wnut17-emerging.test.annotated")],
)
def test_source_name(raw: str, name: str) -> None:
    assert source_name(raw) == name


@pytest.mark.parametrize(
    ("extra", "message"),
    [({"meta": "OLID"}, r"tox\.jsonl:1: 'meta' must be an object"),
     ({"meta": {"source": 7}}, r"tox\.jsonl:1: 'meta.source' must be a non-empty string"),
     ({"meta": {"source": " "}}, r"'meta.source' must be a non-empty string")],
)
def test_unusable_source_exits_2(
    tmp_path: Path, policy: str, capsys: pytest.CaptureFixture[str], extra: dict[str, Any], message: str
) -> None:
    data = write_jsonl(tmp_path / "tox.jsonl", [{"text": "a", "toxic": True, **extra}])
    code, out, err = eval_cli(capsys, "--policy", policy, "--stage", "input", "--data", data)
    assert (code, out) == (2, "")
    assert re.search(message, err), err


def test_rows_without_meta_source_are_fine(tmp_path: Path, policy: str, capsys: pytest.CaptureFixture[str]) -> None:
    data = write_jsonl(tmp_path / "tox.jsonl", [{"text": "a badword", "toxic": True, "meta": {"id": 3}}])
    assert "per_source" not in eval_json(capsys, "--policy", policy, "--stage", "input", "--data", data)


# -- leave one source out -------------------------------------------------------------------------------------


def task(source: str, positives: Sequence[float], negatives: Sequence[float], name: str = "t",
         subsets: dict[str, list[bool]] | None = None) -> loso.Task:
    scores = np.array([*positives, *negatives], dtype=np.float64)
    gold = np.array([True] * len(positives) + [False] * len(negatives))
    masks = {key: np.array(mask) for key, mask in (subsets or {}).items()}
    return loso.Task(source, name, scores, gold, masks)


# A and B are separated at 0.5 (F1 1; 0.8 at 0.3, 2/3 at 0.7). C's scores sit higher: its one positive at 0.8,
# its five negatives at 0.6, so C alone picks 0.7 (F1 1; 2/7 at 0.3 and 0.5). A fit on all three sources would
# pick 0.7 too (mean F1 7/9 against 16/21 at 0.5); only a fit on A and B alone picks 0.5.
GRID = (0.3, 0.5, 0.7)


def three_sources() -> list[loso.Task]:
    return [task("A", [0.6, 0.8], [0.4]), task("B", [0.6, 0.8], [0.4]),
            task("C", [0.8], [0.6] * 5, subsets={"hard": [False, True, False, False, False, False]})]


def test_left_out_source_gets_the_other_sources_threshold() -> None:
    results = {r.source: r for r in loso.leave_one_source_out(three_sources(), loso.grid_fit(GRID),
                                                              loso.Setting(0.3))}
    c = results["C"]
    assert c.in_sample.setting.threshold == 0.7
    assert c.in_sample.per_task["t"].confusion.f1 == 1.0
    assert c.left_out.setting.threshold == 0.5  # A and B's pick, not C's own nor that of all three
    assert c.left_out.fitted_on == ("A", "B")
    left = c.left_out.per_task["t"].confusion
    assert (left.tp, left.fp, left.fn, left.tn) == (1, 5, 0, 0)
    assert left.f1 == pytest.approx(2 / 7)
    assert c.left_out.subsets["t"]["hard"].confusion.false_positive_rate == 1.0
    assert c.in_sample.subsets["t"]["hard"].confusion.false_positive_rate == 0.0
    # Left out A, the fit sees B (F1 1 at 0.5, 2/3 at 0.7) and C (2/7 at 0.5, 1 at 0.7): 0.7 wins, 5/6 to 9/14.
    a = results["A"]
    assert (a.in_sample.setting.threshold, a.left_out.setting.threshold) == (0.5, 0.7)
    assert a.left_out.per_task["t"].confusion.f1 == pytest.approx(2 / 3)
    stock = a.stock.per_task["t"].confusion
    assert (stock.tp, stock.fp, stock.f1) == (2, 1, pytest.approx(0.8))
    assert c.rows == 6


def test_fit_sees_only_the_sources_it_is_given() -> None:
    seen: list[list[str]] = []

    def fit(tasks: Sequence[loso.Task]) -> loso.Setting:
        seen.append(sorted(t.source for t in tasks))
        return loso.Setting(0.5)

    loso.leave_one_source_out(three_sources(), fit, loso.Setting(0.5))
    assert seen == [["A"], ["B", "C"], ["B"], ["A", "C"], ["C"], ["A", "B"]]


def test_a_fit_may_rescore_rows() -> None:
    inverted = [task("A", [0.2], [0.9]), task("B", [0.1], [0.8])]

    def flip(tasks: Sequence[loso.Task]) -> loso.Setting:
        return loso.Setting(0.5, rescore=lambda t: 1 - t.scores)

    results = loso.leave_one_source_out(inverted, flip, loso.Setting(0.5))
    left = results[0].left_out
    assert left.per_task["t"].confusion.f1 == 1.0 and left.per_task["t"].auroc == 1.0
    assert results[0].stock.per_task["t"].auroc == 0.0


def test_grid_fit_constraints() -> None:
    # At 0.3 everything fires (F1 0.8, precision 2/3, FPR 1); at 0.5 one of two positives and nothing else (F1 2/3).
    tasks = [task("A", [0.6, 0.4], [0.35])]
    assert loso.grid_fit(GRID)(tasks).threshold == 0.3
    assert loso.grid_fit(GRID, min_precision=0.9)(tasks).threshold == 0.5
    assert loso.grid_fit(GRID, max_fpr=0.1)(tasks).threshold == 0.5
    unreachable = loso.grid_fit((0.3,), min_precision=0.9)(tasks)
    assert unreachable.threshold == 0.3 and "closest" in unreachable.note


def test_grid_fit_counts_each_task_once() -> None:
    # big: F1 200/220 at 0.3, 140/170 at 0.5; small: 2/6 at 0.3, 1 at 0.5. Mean F1 picks 0.5 (0.91 against 0.62);
    # pooling the rows would pick 0.3 (F1 202/227 against 142/172).
    big = task("A", [0.6] * 70 + [0.4] * 30, [0.4] * 20 + [0.1] * 80, "big")
    small = task("A", [0.6], [0.4] * 4, "small")
    assert loso.grid_fit(GRID)([big, small]).threshold == 0.5


def test_auroc_by_hand() -> None:
    scores = np.array([0.1, 0.4, 0.35, 0.8])
    gold = np.array([False, False, True, True])
    assert loso.auroc(scores, gold) == 0.75  # 0.35 beats 0.1 only; 0.8 beats both
    assert loso.auroc(np.array([0.5, 0.5, 0.9]), np.array([True, False, True])) == 0.75  # a tie counts half
    assert loso.auroc(np.array([0.1, 0.2]), np.array([True, True])) is None


def test_one_source_is_refused() -> None:
    with pytest.raises(ValueError, match="two sources or more"):
        loso.leave_one_source_out([task("A", [0.6], [0.4])], loso.grid_fit(GRID), loso.Setting(0.5))


def test_markdown_tables() -> None:
    results = loso.leave_one_source_out(three_sources(), loso.grid_fit(GRID), loso.Setting(0.3))
    text = loso.markdown(results, "@0.3")
    assert ("| C | 1 | 6 | 1.00 | 0.17 / 1.00 / **0.29** (1.00) | 0.70 | 1.00 / 1.00 / **1.00** (0.00) | 0.50 | "
            "0.17 / 1.00 / **0.29** (1.00) |") in text
    assert "| C | t | hard | 1 | 0 | 1.00 / 0.00 / 1.00 | n/a / n/a / n/a |" in text
    assert "Mean left-out F1 over sources: **0.54** (stock: 0.63, in-sample: 1.00)" in text


def test_parse_grid() -> None:
    assert loso.parse_grid("0.2:0.3:0.05") == (0.2, 0.25, 0.3)
    assert loso.parse_grid("0.4,0.5") == (0.4, 0.5)


def test_score_cache(tmp_path: Path) -> None:
    calls: list[int] = []

    def compute() -> loso_cache.FloatArray:
        calls.append(1)
        return np.array([0.25, 0.5])

    cache = loso_cache.ScoreCache(tmp_path / "cache")
    key = {"guard": "x", "texts": loso_cache.texts_digest(["a", "b"])}
    assert cache.get(key, compute).tolist() == [0.25, 0.5]
    assert cache.get(key, compute).tolist() == [0.25, 0.5]
    assert len(calls) == 1
    cache.get({**key, "texts": loso_cache.texts_digest(["a", "c"])}, compute)
    assert len(calls) == 2
    off = loso_cache.ScoreCache(tmp_path / "off", enabled=False)
    off.get(key, compute)
    assert len(calls) == 3 and not (tmp_path / "off").exists()


def test_code_digest_follows_the_files(tmp_path: Path) -> None:
    code = tmp_path / "guard"
    code.mkdir()
    (code / "a.py").write_text("x = 1\n")
    before = loso_cache.code_digest([code])
    (code / "a.py").write_text("x = 2\n")
    assert loso_cache.code_digest([code]) != before


def test_cli_with_a_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    data = write_jsonl(tmp_path / "rows.jsonl", [{"source": s, "score": x, "gold": g} for s, x, g in [
        ("A", 0.6, True), ("A", 0.4, False), ("B", 0.6, True), ("B", 0.4, False), ("C", 0.8, True),
        ("C", 0.6, False)]])

    def build_tasks(paths: Sequence[Path], cache: loso_cache.ScoreCache) -> list[loso.Task]:
        rows = [json.loads(line) for line in paths[0].read_text().splitlines()]
        return [task(s, [r["score"] for r in rows if r["source"] == s and r["gold"]],
                     [r["score"] for r in rows if r["source"] == s and not r["gold"]]) for s in "ABC"]

    plugin = types.ModuleType("loso_fake")
    plugin.BENCH = loso.GuardBench("fake", (), 0.3, GRID, build_tasks, ("a note",))  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "loso_fake", plugin)
    monkeypatch.setitem(loso.PLUGINS, "fake", "loso_fake")
    out = tmp_path / "loso-fake.json"
    assert loso.main(["fake", "--data", data, "--out", str(out), "--no-cache"]) == 0
    printed = capsys.readouterr().out
    assert "| C | 1 | 2 | 1.00 |" in printed and "a note" in printed
    result = json.loads(out.read_text())
    assert result["sources"]["C"]["left_out"]["threshold"] == 0.5
    assert result["sources"]["C"]["in_sample"]["threshold"] == 0.7
    assert result["sources"]["C"]["left_out"]["tasks"]["t"]["f1"] == pytest.approx(2 / 3, abs=1e-4)
    assert result["grid"] == [0.3, 0.5, 0.7] and result["stock_threshold"] == 0.3


def test_cli_skips_without_data(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert loso.main(["topics", "--data", str(tmp_path / "absent.jsonl")]) == 0
    assert capsys.readouterr().out.startswith("skipped: ")
