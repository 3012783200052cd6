"""Leave one source out for ``guard: grounding`` (method ``signals``), against plain word overlap.

Sources: HaluEval QA and WiCE (``grounding_dev.jsonl``), and LFQA (``grounding_lfqa.jsonl``, one
answer sentence against web evidence). The positive class is "not grounded". A row's score is:

- ``guard``: its worst claim's P(unsupported), with claims split and the context cut as the guard does.
  Every claim's signals are computed once (``training/grounding_fit.claim_features``, cached); the
  stock column scores them with the shipped combiner (fitted on HaluEval and WiCE, so in-sample
  there), and the left-out column **refits the combiner** on the other sources' claims
  (``training/grounding_fit.fit_combiner``) and then picks the threshold on those sources' rows;
- ``overlap``: the share of the answer's content words absent from the context
  (``grounding_quality.lexical_baseline``), the baseline issue 14 names; only its threshold is fitted.

The threshold is the one with the best mean F1 on the fitted sources (a cap on their FPR was tried:
on HaluEval and WiCE it left the left-out balanced accuracy lower). LFQA is measure-only (no
licence): nothing is ever fitted on it, neither combiner nor threshold; its left-out setting is
fitted on HaluEval and WiCE together, which is what ships (``DEFAULT_THRESHOLD``), and its in-sample
column repeats the stock setting. ``loso.py grounding``
runs the dev sources only with the shipped combiner and refuses LFQA. This file's CLI also prints
balanced accuracy and the figures within answer-length buckets (length leaks the label on HaluEval):

    .venv/bin/python benchmarks/loso_grounding.py [--score guard|overlap] [--out FILE]
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from loso import (
    REPO,
    RESULTS,
    SHARED_DATA,
    SHORT_NAMES,
    Fit,
    GuardBench,
    Setting,
    SourceResult,
    Task,
    _f,
    _git_head,
    grid_fit,
    leave_one_source_out,
    markdown,
    mean,
)
from loso_cache import FloatArray, ScoreCache, code_digest, texts_digest

from guardproxy.evaluation.datasets import source_name
from guardproxy.evaluation.scoring import Confusion
from guardproxy.guards.grounding.combiner import COMBINER_PATH, load_combiner
from guardproxy.guards.grounding.config import DEFAULT_THRESHOLD, GroundingConfig
from guardproxy.guards.grounding.signals import FEATURES

sys.path.insert(0, str(REPO))  # training/ (the combiner's fit) is not part of the installed package
GROUNDING = REPO / "guardproxy" / "guards" / "grounding"
# What the claim signals depend on: the guard's code and data, not the combiner fitted on them.
SIGNAL_CODE = tuple(p for p in sorted(GROUNDING.rglob("*"))
                    if p.is_file() and p != COMBINER_PATH and "__pycache__" not in p.parts)
DEV = SHARED_DATA / "grounding_dev.jsonl"
LFQA = SHARED_DATA / "grounding_lfqa.jsonl"
MEASURE_ONLY = frozenset({"LFQA"})
BUCKETS = ((0, 20), (20, 50), (50, 100), (100, 10**9))
GRID = tuple(round(0.01 * i, 2) for i in range(101))


@dataclasses.dataclass(frozen=True)
class Claims:
    """A task's claims: the row each belongs to (within the task) and its signals in ``FEATURES`` order."""

    owners: np.ndarray
    features: np.ndarray


def _rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def claim_matrix(path: Path, cache: ScoreCache) -> FloatArray:
    """One line per claim of the file: its row, then its signals. Cached on the signal code, not the combiner."""
    from training.grounding_fit import Row, build_extractor, claim_features

    rows = _rows(path)
    config = GroundingConfig()
    key = {"guard": "grounding", "score": "claim signals", "features": list(FEATURES), "config": config.model_dump(),
           "texts": texts_digest([r["context"] + "\0" + r["answer"] for r in rows]),
           "code": code_digest(SIGNAL_CODE)}

    def compute() -> FloatArray:
        owners, features = claim_features(build_extractor(), [Row(r["context"], r["answer"], r["grounded"], "")
                                                               for r in rows], config)
        return np.column_stack([owners, features])

    return cache.get(key, compute)


def overlap_scores(path: Path, cache: ScoreCache) -> FloatArray:
    from grounding_quality import lexical_baseline  # imports training/, which only this baseline needs

    from training.grounding_fit import Row

    rows = _rows(path)
    key = {"guard": "grounding", "score": "overlap", "code": "lexical_baseline",
           "texts": texts_digest([r["context"] + "\0" + r["answer"] for r in rows])}
    return cache.get(key, lambda: np.array([lexical_baseline(Row(r["context"], r["answer"], True, "")) for r in rows]))


def _buckets(answers: Sequence[str]) -> dict[str, np.ndarray]:
    lengths = np.array([len(a) for a in answers])
    masks = {(f"{lo}-{hi} chars" if hi < 10**9 else f">= {lo} chars"): (lengths >= lo) & (lengths < hi)
             for lo, hi in BUCKETS}
    return {name: mask for name, mask in masks.items() if mask.any()}


def build_tasks(paths: Sequence[Path], cache: ScoreCache, score: str = "guard",
                measure_only: bool = False) -> list[Task]:
    """One task per source; a guard task carries its claims (``Claims``) for ``refit_combiner``."""
    from training.grounding_fit import answer_scores

    rows = [r for path in paths for r in _rows(path)]
    sources = np.array([SHORT_NAMES.get(n, n) for n in (source_name(r["meta"]["source"]) for r in rows)])
    if not measure_only and MEASURE_ONLY & set(sources):
        raise ValueError("LFQA is measure-only: run benchmarks/loso_grounding.py, which never fits on it")
    answers = [r["answer"] for r in rows]
    gold = np.array([not r["grounded"] for r in rows])
    offsets = np.cumsum([0] + [len(_rows(path)) for path in paths])
    if score == "guard":
        parts = [claim_matrix(path, cache) for path in paths]
        matrix = np.vstack([np.column_stack([part[:, 0] + offset, part[:, 1:]]) for part, offset in
                            zip(parts, offsets, strict=False)])
        owners, features = matrix[:, 0].astype(np.int64), matrix[:, 1:]
        scores = answer_scores(load_combiner(), owners, features, len(rows))
    else:
        scores = np.concatenate([overlap_scores(path, cache) for path in paths])
    tasks = []
    for source in dict.fromkeys(sources):
        mine = np.flatnonzero(sources == source)
        claims = None
        if score == "guard":
            local = np.full(len(rows), -1)
            local[mine] = np.arange(len(mine))
            picked = local[owners] >= 0
            claims = Claims(local[owners][picked], features[picked])
        tasks.append(Task(str(source), "not grounded", scores[mine], gold[mine], _buckets([answers[i] for i in mine]),
                          claims))
    return tasks


def refit_combiner(threshold_fit: Fit) -> Fit:
    """Fit the combiner on the given tasks' claims (never a measure-only source's), re-score every task with it,
    and pick the threshold on the given tasks. Given only measure-only tasks, it fits nothing: the stock setting."""
    from training.grounding_fit import answer_scores, fit_combiner

    def fitted(tasks: Sequence[Task]) -> Setting:
        allowed = [t for t in tasks if t.source not in MEASURE_ONLY]
        if not allowed:
            return Setting(DEFAULT_THRESHOLD, note="measure-only: nothing fitted, the stock setting")
        labels = np.concatenate([t.gold[t.inputs.owners] for t in allowed])
        sources = [t.source for t in allowed for _ in t.inputs.owners]
        combiner = fit_combiner(np.vstack([t.inputs.features for t in allowed]), labels, sources)

        def rescore(task: Task) -> FloatArray:
            return answer_scores(combiner, task.inputs.owners, task.inputs.features, len(task.gold))

        setting = threshold_fit([dataclasses.replace(t, scores=rescore(t)) for t in allowed])
        weights = ", ".join(f"{name} {weight:+.2f}" for name, weight in combiner.coefficients.items())
        return Setting(setting.threshold, rescore, note=f"{setting.note}; combiner: {weights}, "
                                                         f"intercept {combiner.intercept:+.2f}")

    return fitted


def fit_without(measure_only: frozenset[str], fit: Fit) -> Fit:
    """``fit`` on the given tasks minus measure-only sources' (the stock setting when only those are given)."""
    def fitted(tasks: Sequence[Task]) -> Setting:
        allowed = [t for t in tasks if t.source not in measure_only]
        return fit(allowed) if allowed else Setting(DEFAULT_THRESHOLD, note="measure-only: nothing fitted")
    return fitted


def balanced_accuracy(c: Confusion) -> float | None:
    if c.recall is None or c.false_positive_rate is None:
        return None
    return (c.recall + 1 - c.false_positive_rate) / 2


def _row(c: Confusion) -> str:
    return f"{_f(c.precision)} / {_f(c.recall)} / {_f(c.f1)} | {_f(balanced_accuracy(c))} | {_f(c.false_positive_rate)}"


def summary(results: Sequence[SourceResult]) -> str:
    """Per source and per answer-length bucket: AUROC and balanced accuracy, stock and left out (for ``guard``,
    the left-out AUROC is the refitted combiner's)."""
    lines = ["| source | rows | AUROC stock / left out | stock: P / R / F1 | stock BA | stock FPR | left out: t "
             "| left out: P / R / F1 | left out BA | left out FPR |", "|---|---:|---|---|---:|---:|---:|---|---:|---:|"]
    buckets = ["", "| source | subset | rows | not grounded | AUROC stock / left out | stock BA (FPR) "
               "| left out BA (FPR) |", "|---|---|---:|---:|---|---|---|"]
    for r in results:
        stock, left = r.stock.per_task["not grounded"], r.left_out.per_task["not grounded"]
        lines.append(f"| {r.source} | {r.rows} | {_f(stock.auroc)} / {_f(left.auroc)} | {_row(stock.confusion)} | "
                     f"{r.left_out.setting.threshold:.2f} | {_row(left.confusion)} |")
        for name, sub in r.stock.subsets["not grounded"].items():
            lsub = r.left_out.subsets["not grounded"][name]
            c, lc = sub.confusion, lsub.confusion
            buckets.append(f"| {r.source} | {name} | {c.items} | {c.tp + c.fn} | {_f(sub.auroc)} / {_f(lsub.auroc)} | "
                           f"{_f(balanced_accuracy(c))} ({_f(c.false_positive_rate)}) | "
                           f"{_f(balanced_accuracy(lc))} ({_f(lc.false_positive_rate)}) |")
    return "\n".join(lines + buckets)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--score", choices=("guard", "overlap"), default="guard")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    paths = [p for p in (DEV, LFQA) if p.is_file()]
    if DEV not in paths:
        print(f"skipped: {DEV} not found (the shared data lives outside the repository)")
        return 0
    tasks = build_tasks(paths, ScoreCache(), args.score, measure_only=True)
    stock = Setting(DEFAULT_THRESHOLD, note="the guard's default")
    threshold_fit = grid_fit(GRID)
    fit = refit_combiner(threshold_fit) if args.score == "guard" else fit_without(MEASURE_ONLY, threshold_fit)
    results = leave_one_source_out(tasks, fit, stock)
    print(f"## grounding ({args.score}): leave one source out\n\nData: {', '.join(p.name for p in paths)}. Fit: "
          + ("the combiner on the other sources' claims, then " if args.score == "guard" else "")
          + "the threshold with the best mean F1 (0..1 step 0.01) on the other sources; "
          "LFQA never fitted on.\n")
    for r in results:
        print(f"- {r.source} left out: {r.left_out.setting.note}")
    print()
    print(markdown(results, f"@{DEFAULT_THRESHOLD:g}"))
    print()
    print(summary(results))
    print(f"\nMean AUROC over sources: stock {_f(mean([r.stock.mean('auroc') for r in results]))}, left out "
          f"{_f(mean([r.left_out.mean('auroc') for r in results]))}")
    out = args.out or RESULTS / ("loso-grounding.json" if args.score == "guard" else "loso-grounding-overlap.json")
    out.write_text(json.dumps({
        "guard": "grounding", "score": args.score,
        "generated": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"), "commit": _git_head(),
        "data": [p.name for p in paths], "grid": list(GRID), "stock_threshold": DEFAULT_THRESHOLD,
        "measure_only": sorted(MEASURE_ONLY),
        "sources": {r.source: {**r.as_json(), "balanced_accuracy": {
            k: _f(balanced_accuracy(getattr(r, k).per_task["not grounded"].confusion))
            for k in ("stock", "in_sample", "left_out")}} for r in results},
    }, indent=1) + "\n")
    print(f"\nJSON: {out.relative_to(REPO) if out.is_relative_to(REPO) else out}")
    return 0


BENCH = GuardBench(
    guard="grounding",
    data=(DEV,),
    stock_threshold=DEFAULT_THRESHOLD,
    grid=GRID,
    build_tasks=build_tasks,
    notes=("Dev sources only (HaluEval, WiCE); LFQA is measure-only, see benchmarks/loso_grounding.py.",),
)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import loso_grounding  # one copy of the classes, as loso.py does

    sys.exit(loso_grounding.main())
