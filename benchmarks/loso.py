"""Leave one source out: choose a guard's setting on all sources but one, report it on the one left out.

A guard is only as good as its figures on text it was never tuned on (issue 14). This harness takes
*tasks* (one binary decision on the rows of one source: a score per row and the gold answer) and a
*fit* (a function that chooses a setting from some tasks: a threshold from a grid, or a fitted model
that re-scores rows), and for each source in turn reports three figures on that source's tasks:

- stock: the guard's shipped setting (its default threshold);
- in-sample: the setting fitted on this source's own tasks (what tuning on it would give);
- left out: the setting fitted on every *other* source's tasks, never on this one.

A fit sees only the tasks it is given, so "left out" is what a new kind of text would get. Each task
counts once in a fit and in a source's means, whatever its size (a banned topic with 200 rows weighs
what one with 2,000 does). Named subsets of a task's rows (hard negatives, say) are reported beside.

Guard plugins (``loso_topics.py``, ``loso_toxicity.py``) turn data files into tasks; this file is the
library and the CLI:

    .venv/bin/python benchmarks/loso.py topics [--data FILE ...] [--grid 0.2:0.8:0.01] [--min-precision 0.9]
    .venv/bin/python benchmarks/loso.py toxicity [--max-fpr 0.1] [--out benchmarks/results/loso-toxicity.json]

It prints markdown tables and writes the figures as JSON to ``benchmarks/results/loso-<guard>.json``.
Scores are cached under ``benchmarks/.cache/loso/`` (``loso_cache.py``).
Data come from ``../shared/data/`` (never copied into the repository); without it the run is skipped.
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import json
import math
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from loso_cache import FloatArray, ScoreCache

from guardproxy.evaluation.scoring import Confusion

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"
RESULTS = REPO / "benchmarks" / "results"

BoolArray = npt.NDArray[np.bool_]

# Readable names for the data sets of ../shared/data (``source_name`` of their meta.source); others keep theirs.
SHORT_NAMES = {
    "clinc/oos-eval": "CLINC150", "banking77": "BANKING77", "OLID": "OLID",
    "intelligence-csd-auth-gr/Ethos-Hate-Speech-Dataset": "ETHOS", "microsoft/TOXIGEN": "ToxiGen",
    "paul-rottger/hatecheck-data": "HateCheck", "RUCAIBox/HaluEval": "HaluEval", "ryokamoi/wice": "WiCE",
    "lfqa_verification": "LFQA", "microsoft/presidio-research": "presidio-synth",
    "wnut17-emerging.test.annotated": "WNUT-17", "jackhhao/llm-warden": "llm-warden",
    "deepset/prompt-injections": "deepset",
}


@dataclass(frozen=True)
class Task:
    """One binary decision on the rows of one source: ban this topic, flag toxic text, ...

    ``scores`` are the guard's score per row (higher means fire); ``inputs`` is whatever a fit that
    re-scores rows needs (texts, features), never read here. ``subsets`` name row masks reported apart.
    """

    source: str
    name: str
    scores: FloatArray
    gold: BoolArray
    subsets: Mapping[str, BoolArray] = field(default_factory=dict)
    inputs: Any = None


@dataclass(frozen=True)
class Setting:
    """What a fit chose: fire when the score reaches ``threshold``; ``rescore`` replaces the task's scores."""

    threshold: float
    rescore: Callable[[Task], FloatArray] | None = None
    note: str = ""

    def scores(self, task: Task) -> FloatArray:
        return task.scores if self.rescore is None else self.rescore(task)


Fit = Callable[[Sequence[Task]], Setting]


@dataclass(frozen=True)
class Figures:
    """A setting's figures on some rows. ``auroc`` is None with only one class; ratios as in ``Confusion``."""

    confusion: Confusion
    auroc: float | None

    def as_json(self) -> dict[str, Any]:
        c = self.confusion
        return {"rows": c.items, "positives": c.tp + c.fn, "tp": c.tp, "fp": c.fp, "fn": c.fn, "tn": c.tn,
                "precision": _round(c.precision), "recall": _round(c.recall), "f1": _round(c.f1),
                "fpr": _round(c.false_positive_rate), "auroc": _round(self.auroc)}


def auroc(scores: FloatArray, gold: BoolArray) -> float | None:
    """Probability that a random positive outscores a random negative, ties counting half."""
    positives = int(gold.sum())
    negatives = len(gold) - positives
    if not positives or not negatives:
        return None
    order = np.argsort(scores, kind="mergesort")
    _, first, counts = np.unique(scores[order], return_index=True, return_counts=True)
    ranks = np.empty(len(scores))
    ranks[order] = np.repeat(first + (counts + 1) / 2, counts)  # 1-based, ties share their mean rank
    return float((ranks[gold].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def confusion_at(scores: FloatArray, gold: BoolArray, threshold: float) -> Confusion:
    fired = scores >= threshold
    return Confusion(tp=int(np.sum(fired & gold)), fp=int(np.sum(fired & ~gold)), fn=int(np.sum(~fired & gold)),
                     tn=int(np.sum(~fired & ~gold)))


def figures(scores: FloatArray, gold: BoolArray, threshold: float) -> Figures:
    return Figures(confusion_at(scores, gold, threshold), auroc(scores, gold))


def mean(values: Sequence[float | None]) -> float | None:
    """The mean of the defined values (None if there are none): a task without negatives has no FPR."""
    defined = [v for v in values if v is not None]
    return sum(defined) / len(defined) if defined else None


def grid_fit(grid: Sequence[float], min_precision: float = 0.0, max_fpr: float = 1.0) -> Fit:
    """A fit choosing, from ``grid``, the threshold with the best mean F1 over the tasks it is given, among
    those whose mean precision reaches ``min_precision`` and mean FPR stays within ``max_fpr``.

    Ties go to the lowest threshold. If no threshold meets the constraints, the one closest to meeting
    them is chosen (the highest precision, then the lowest FPR), and its note says so.
    """
    if not grid:
        raise ValueError("the threshold grid is empty")
    grid = sorted(grid)

    def fit(tasks: Sequence[Task]) -> Setting:
        if not tasks:
            raise ValueError("nothing to fit on: no tasks")
        best: tuple[float, float] | None = None  # (mean F1, threshold)
        closest: tuple[float, float, float] | None = None  # (mean precision, -mean FPR, threshold)
        for threshold in grid:
            tallies = [confusion_at(task.scores, task.gold, threshold) for task in tasks]
            f1 = mean([t.f1 for t in tallies]) or 0.0
            precision = mean([t.precision for t in tallies]) or 0.0
            fpr = mean([t.false_positive_rate for t in tallies]) or 0.0
            if precision >= min_precision and fpr <= max_fpr:
                if best is None or f1 > best[0]:
                    best = (f1, threshold)
            elif closest is None or (precision, -fpr) > closest[:2]:
                closest = (precision, -fpr, threshold)
        if best is not None:
            return Setting(best[1], note=f"best mean F1 {best[0]:.3f}")
        assert closest is not None
        return Setting(closest[2], note="no threshold met the constraints; closest chosen")

    return fit


@dataclass(frozen=True)
class Evaluation:
    """One setting applied to one source's tasks: figures per task and per named subset."""

    setting: Setting
    fitted_on: tuple[str, ...]
    per_task: dict[str, Figures]
    subsets: dict[str, dict[str, Figures]]

    def mean(self, metric: str) -> float | None:
        if metric == "auroc":
            return mean([f.auroc for f in self.per_task.values()])
        return mean([getattr(f.confusion, metric) for f in self.per_task.values()])

    def as_json(self) -> dict[str, Any]:
        return {
            "threshold": self.setting.threshold, "note": self.setting.note, "fitted_on": list(self.fitted_on),
            "mean": {m: _round(self.mean(m)) for m in ("precision", "recall", "f1", "false_positive_rate", "auroc")},
            "tasks": {name: f.as_json() for name, f in self.per_task.items()},
            "subsets": {name: {s: f.as_json() for s, f in subsets.items()} for name, subsets in self.subsets.items()},
        }


@dataclass(frozen=True)
class SourceResult:
    source: str
    rows: int
    stock: Evaluation
    in_sample: Evaluation
    left_out: Evaluation

    def as_json(self) -> dict[str, Any]:
        return {"rows": self.rows, "stock": self.stock.as_json(), "in_sample": self.in_sample.as_json(),
                "left_out": self.left_out.as_json()}


def evaluate(setting: Setting, tasks: Sequence[Task], fitted_on: Sequence[str] = ()) -> Evaluation:
    per_task: dict[str, Figures] = {}
    subsets: dict[str, dict[str, Figures]] = {}
    for task in tasks:
        scores = setting.scores(task)
        per_task[task.name] = figures(scores, task.gold, setting.threshold)
        if task.subsets:
            subsets[task.name] = {name: figures(scores[mask], task.gold[mask], setting.threshold)
                                  for name, mask in task.subsets.items()}
    return Evaluation(setting, tuple(fitted_on), per_task, subsets)


def sources_of(tasks: Sequence[Task]) -> list[str]:
    """The sources, in order of first appearance."""
    return list(dict.fromkeys(task.source for task in tasks))


def leave_one_source_out(tasks: Sequence[Task], fit: Fit, stock: Setting) -> list[SourceResult]:
    """For each source: the stock setting, the setting fitted on it, and the one fitted on all the others."""
    sources = sources_of(tasks)
    if len(sources) < 2:
        raise ValueError(f"leave one source out needs two sources or more; the tasks have {sources}")
    names = [(task.source, task.name) for task in tasks]
    if len(set(names)) != len(names):
        raise ValueError("two tasks of one source share a name")
    results = []
    for source in sources:
        own = [t for t in tasks if t.source == source]
        others = [t for t in tasks if t.source != source]
        rows = max(len(t.gold) for t in own)
        results.append(SourceResult(
            source, rows, evaluate(stock, own), evaluate(fit(own), own, [source]),
            evaluate(fit(others), own, [s for s in sources if s != source]),
        ))
    return results


# -- output -------------------------------------------------------------------------------------------------


def _round(value: float | None, places: int = 4) -> float | None:
    return None if value is None or math.isnan(value) else round(value, places)


def _f(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def _prf(evaluation: Evaluation) -> str:
    return (f"{_f(evaluation.mean('precision'))} / {_f(evaluation.mean('recall'))} / "
            f"**{_f(evaluation.mean('f1'))}** ({_f(evaluation.mean('false_positive_rate'))})")


def _task_prf(f: Figures) -> str:
    c = f.confusion
    return f"{_f(c.precision)} / {_f(c.recall)} / {_f(c.f1)} ({_f(c.false_positive_rate)})"


def markdown(results: Sequence[SourceResult], stock_label: str) -> str:
    """Three tables: per left-out source (means over its tasks), per task, and per named subset."""
    lines = [
        f"| left-out source | tasks | rows | AUROC | stock {stock_label}: P / R / F1 (FPR) | in-sample: t | "
        "in-sample: P / R / F1 (FPR) | left out: t | left out: P / R / F1 (FPR) |",
        "|---|---:|---:|---:|---|---:|---|---:|---|",
    ]
    for r in results:
        lines.append(f"| {r.source} | {len(r.stock.per_task)} | {r.rows} | {_f(r.stock.mean('auroc'))} | "
                     f"{_prf(r.stock)} | {r.in_sample.setting.threshold:.2f} | {_prf(r.in_sample)} | "
                     f"{r.left_out.setting.threshold:.2f} | {_prf(r.left_out)} |")
    mean_f1 = mean([r.left_out.mean("f1") for r in results])
    lines.append(f"\nMean left-out F1 over sources: **{_f(mean_f1)}** (stock: "
                 f"{_f(mean([r.stock.mean('f1') for r in results]))}, in-sample: "
                 f"{_f(mean([r.in_sample.mean('f1') for r in results]))}).")
    if any(len(r.stock.per_task) > 1 for r in results):
        lines += ["", "| source | task | rows | positives | AUROC | stock P / R / F1 (FPR) | "
                  "in-sample P / R / F1 (FPR) | left out P / R / F1 (FPR) |", "|---|---|---:|---:|---:|---|---|---|"]
        for r in results:
            for name, stock in r.stock.per_task.items():
                c = stock.confusion
                lines.append(f"| {r.source} | {name} | {c.items} | {c.tp + c.fn} | {_f(stock.auroc)} | "
                             f"{_task_prf(stock)} | {_task_prf(r.in_sample.per_task[name])} | "
                             f"{_task_prf(r.left_out.per_task[name])} |")
    subset_rows = [(r, task, name) for r in results for task, subsets in r.stock.subsets.items() for name in subsets]
    if subset_rows:
        lines += ["", "| source | task | subset | rows | positives | FPR stock / in-sample / left out | "
                  "recall stock / in-sample / left out |", "|---|---|---|---:|---:|---|---|"]
        for r, task, name in subset_rows:
            parts = [e.subsets[task][name].confusion for e in (r.stock, r.in_sample, r.left_out)]
            fpr = " / ".join(_f(c.false_positive_rate) for c in parts)
            recall = " / ".join(_f(c.recall) for c in parts)
            lines.append(f"| {r.source} | {task} | {name} | {parts[0].items} | {parts[0].tp + parts[0].fn} | "
                         f"{fpr} | {recall} |")
    return "\n".join(lines)


# -- guard plugins and the CLI ------------------------------------------------------------------------------


@dataclass(frozen=True)
class GuardBench:
    """What a guard plugin (``loso_<guard>.py``, attribute ``BENCH``) gives the CLI."""

    guard: str
    data: tuple[Path, ...]
    stock_threshold: float
    grid: tuple[float, ...]
    build_tasks: Callable[[Sequence[Path], ScoreCache], list[Task]]
    notes: tuple[str, ...] = ()


PLUGINS = {"topics": "loso_topics", "toxicity": "loso_toxicity", "grounding": "loso_grounding"}


def parse_grid(text: str) -> tuple[float, ...]:
    """``start:stop:step`` (stop included) or a comma-separated list."""
    if ":" in text:
        start, stop, step = (float(part) for part in text.split(":"))
        count = round((stop - start) / step) + 1
        return tuple(round(start + i * step, 6) for i in range(count))
    return tuple(float(part) for part in text.split(","))


def _git_head() -> str | None:
    done = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                          check=False)
    return done.stdout.strip() or None


def _skipped(paths: Sequence[Path]) -> bool:
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        print(f"skipped: {', '.join(missing)} not found (the shared data lives outside the repository)")
    return bool(missing)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("guard", choices=sorted(PLUGINS))
    parser.add_argument("--data", type=Path, nargs="+", default=None, help="JSONL files (default: the guard's)")
    parser.add_argument("--grid", type=parse_grid, default=None, help="thresholds, start:stop:step or a,b,c")
    parser.add_argument("--min-precision", type=float, default=0.0, help="fit: mean precision at least this")
    parser.add_argument("--max-fpr", type=float, default=1.0, help="fit: mean false-positive rate at most this")
    parser.add_argument("--out", type=Path, default=None, help="JSON results (default results/loso-<guard>.json)")
    parser.add_argument("--no-cache", action="store_true", help="score every row again, and keep nothing")
    args = parser.parse_args(argv)
    if args.data is not None and _skipped(args.data):  # before the plugin loads its models
        return 0
    bench: GuardBench = importlib.import_module(PLUGINS[args.guard]).BENCH
    paths = args.data or list(bench.data)
    if _skipped(paths):
        return 0
    grid = args.grid or bench.grid
    tasks = bench.build_tasks(paths, ScoreCache(enabled=not args.no_cache))
    stock = Setting(bench.stock_threshold, note="the guard's default")
    results = leave_one_source_out(tasks, grid_fit(grid, args.min_precision, args.max_fpr), stock)
    constraint = [f"mean precision >= {args.min_precision}"] if args.min_precision else []
    constraint += [f"mean FPR <= {args.max_fpr}"] if args.max_fpr < 1 else []
    fit_text = (f"threshold with the best mean F1 over the fitted sources' tasks, grid {grid[0]:g}..{grid[-1]:g} "
                f"({len(grid)} values)" + (f", subject to {' and '.join(constraint)}" if constraint else ""))
    print(f"## {args.guard}: leave one source out\n\nData: {', '.join(p.name for p in paths)}. Fit: {fit_text}.\n")
    print(markdown(results, f"@{bench.stock_threshold:g}"))
    for note in bench.notes:
        print(f"\n{note}")
    out = args.out or RESULTS / f"loso-{args.guard}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "guard": args.guard, "generated": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "commit": _git_head(), "data": [p.name for p in paths], "fit": fit_text, "grid": list(grid),
        "stock_threshold": bench.stock_threshold, "notes": list(bench.notes),
        "sources": {r.source: r.as_json() for r in results},
    }, indent=1) + "\n")
    print(f"\nJSON: {out.relative_to(REPO) if out.is_relative_to(REPO) else out}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import loso  # the plugins import this module by name; run its main, so there is one copy of its classes

    sys.exit(loso.main())
