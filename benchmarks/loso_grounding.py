"""Leave one source out for ``guard: grounding`` (method ``signals``), against plain word overlap.

Sources: HaluEval QA and WiCE (``grounding_dev.jsonl``), and LFQA (``grounding_lfqa.jsonl``, one
answer sentence against web evidence). The positive class is "not grounded". A row's score is:

- ``guard``: the guard's own, its worst claim's P(unsupported) (``GroundingGuard.claim_scores``, 0
  when the answer has no claim), with the context cut at ``max_context_chars`` as the guard cuts it;
  HaluEval and WiCE rows are half in-sample for the guard's combiner (``training/grounding_fit.py``
  fitted it on one half of each), so the rows it never saw are also shown apart ("combiner's report half");
- ``overlap``: the share of the answer's content words absent from the context
  (``grounding_quality.lexical_baseline``), the baseline issue 14 names.

LFQA is measure-only (no licence): it is reported as a left-out source but never fitted on, so the
left-out threshold of HaluEval and WiCE is chosen on the other dev source alone; its "in-sample"
column is a diagnostic. ``loso.py grounding`` runs the dev sources only and refuses LFQA; this file's
CLI adds it and also prints balanced accuracy, and the figures within answer-length buckets (length
leaks the label on HaluEval):

    .venv/bin/python benchmarks/loso_grounding.py [--score guard|overlap] [--out FILE]
"""

from __future__ import annotations

import argparse
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
from guardproxy.guards.grounding.config import DEFAULT_THRESHOLD, GroundingConfig
from guardproxy.guards.grounding.guard import GroundingGuard

sys.path.insert(0, str(REPO))  # training/ (the combiner's split) is not part of the installed package
CODE = (REPO / "guardproxy" / "guards" / "grounding",)
DEV = SHARED_DATA / "grounding_dev.jsonl"
LFQA = SHARED_DATA / "grounding_lfqa.jsonl"
MEASURE_ONLY = frozenset({"LFQA"})
COMBINER_SOURCES = frozenset({"HaluEval", "WiCE"})  # training/grounding_fit.py fitted on half of each
BUCKETS = ((0, 20), (20, 50), (50, 100), (100, 10**9))
GRID = tuple(round(0.01 * i, 2) for i in range(101))


def guard_scores(contexts: Sequence[str], answers: Sequence[str], config: GroundingConfig) -> FloatArray:
    guard = GroundingGuard(config)
    guard.warm()
    return np.array([max((score for _, score in guard.claim_scores(answer, [context[: config.max_context_chars]])),
                         default=0.0) for context, answer in zip(contexts, answers, strict=True)])


def overlap_scores(contexts: Sequence[str], answers: Sequence[str]) -> FloatArray:
    from grounding_quality import lexical_baseline  # imports training/, which only this baseline needs

    from training.grounding_fit import Row

    return np.array([lexical_baseline(Row(c, a, True, "")) for c, a in zip(contexts, answers, strict=True)])


def _buckets(answers: Sequence[str]) -> dict[str, np.ndarray]:
    lengths = np.array([len(a) for a in answers])
    masks = {(f"{lo}-{hi} chars" if hi < 10**9 else f">= {lo} chars"): (lengths >= lo) & (lengths < hi)
             for lo, hi in BUCKETS}
    return {name: mask for name, mask in masks.items() if mask.any()}


def combiner_held_out(rows: Sequence[dict[str, Any]], sources: Sequence[str]) -> np.ndarray:
    """The rows the shipped combiner was not fitted on: the ``report`` half of ``training/grounding_fit.py``
    (same seed, same split) for its sources, every row of the others."""
    from training.grounding_fit import DEFAULT_SEED, Row, split_halves

    fitted = [i for i, source in enumerate(sources) if source in COMBINER_SOURCES]
    dev = [Row(rows[i]["context"], rows[i]["answer"], rows[i]["grounded"], sources[i]) for i in fitted]
    held_out = np.ones(len(rows), dtype=bool)
    held_out[[fitted[i] for i in split_halves(dev, DEFAULT_SEED)[0]]] = False
    return held_out


def _scores(path: Path, score: str, cache: ScoreCache) -> FloatArray:
    """One file's scores, cached apart, so ``loso.py grounding`` (the dev file alone) reuses them."""
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    contexts, answers = [r["context"] for r in rows], [r["answer"] for r in rows]
    config = GroundingConfig(threshold=0.0)
    key = {"guard": "grounding", "score": score, "config": config.model_dump(),
           "texts": texts_digest([c + "\0" + a for c, a in zip(contexts, answers, strict=True)]),
           "code": code_digest(CODE) if score == "guard" else "lexical_baseline"}
    if score == "guard":
        return cache.get(key, lambda: guard_scores(contexts, answers, config))
    return cache.get(key, lambda: overlap_scores(contexts, answers))


def build_tasks(paths: Sequence[Path], cache: ScoreCache, score: str = "guard",
                measure_only: bool = False) -> list[Task]:
    rows = [json.loads(line) for path in paths for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip()]
    sources = np.array([SHORT_NAMES.get(n, n) for n in (source_name(r["meta"]["source"]) for r in rows)])
    if not measure_only and MEASURE_ONLY & set(sources):
        raise ValueError("LFQA is measure-only: run benchmarks/loso_grounding.py, which never fits on it")
    answers = [r["answer"] for r in rows]
    scores = np.concatenate([_scores(path, score, cache) for path in paths])
    gold = np.array([not r["grounded"] for r in rows])
    held_out = combiner_held_out(rows, list(sources))
    tasks = []
    for source in dict.fromkeys(sources):
        mine = sources == source
        mine_answers = [a for a, m in zip(answers, mine, strict=True) if m]
        subsets = _buckets(mine_answers)
        if not held_out[mine].all():
            subsets["combiner's report half"] = held_out[mine]
        tasks.append(Task(str(source), "not grounded", scores[mine], gold[mine], subsets))
    return tasks


def fit_without(measure_only: frozenset[str], fit: Fit) -> Fit:
    """``fit`` on the given tasks minus measure-only sources' (all of them when only those are given)."""
    def fitted(tasks: Sequence[Task]) -> Setting:
        allowed = [t for t in tasks if t.source not in measure_only]
        setting = fit(allowed or tasks)
        return setting if allowed else Setting(setting.threshold, note="diagnostic: fitted on measure-only data")
    return fitted


def balanced_accuracy(c: Confusion) -> float | None:
    if c.recall is None or c.false_positive_rate is None:
        return None
    return (c.recall + 1 - c.false_positive_rate) / 2


def _row(c: Confusion) -> str:
    return f"{_f(c.precision)} / {_f(c.recall)} / {_f(c.f1)} | {_f(balanced_accuracy(c))} | {_f(c.false_positive_rate)}"


def summary(results: Sequence[SourceResult]) -> str:
    lines = ["| source | rows | AUROC | stock: P / R / F1 | stock BA | stock FPR | left out: t | left out: P / R / F1 "
             "| left out BA | left out FPR |", "|---|---:|---:|---|---:|---:|---:|---|---:|---:|"]
    buckets = ["", "| source | subset | rows | not grounded | AUROC | stock BA (FPR) | left out BA (FPR) |",
               "|---|---|---:|---:|---:|---|---|"]
    for r in results:
        stock, left = r.stock.per_task["not grounded"], r.left_out.per_task["not grounded"]
        lines.append(f"| {r.source} | {r.rows} | {_f(stock.auroc)} | {_row(stock.confusion)} | "
                     f"{r.left_out.setting.threshold:.2f} | {_row(left.confusion)} |")
        for name, sub in r.stock.subsets["not grounded"].items():
            lsub = r.left_out.subsets["not grounded"][name].confusion
            c = sub.confusion
            buckets.append(f"| {r.source} | {name} | {c.items} | {c.tp + c.fn} | {_f(sub.auroc)} | "
                           f"{_f(balanced_accuracy(c))} ({_f(c.false_positive_rate)}) | "
                           f"{_f(balanced_accuracy(lsub))} ({_f(lsub.false_positive_rate)}) |")
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
    results = leave_one_source_out(tasks, fit_without(MEASURE_ONLY, grid_fit(GRID)), stock)
    print(f"## grounding ({args.score}): leave one source out\n\nData: {', '.join(p.name for p in paths)}. Fit: "
          f"best F1 over 0..1 step 0.01 on the other sources, LFQA never fitted on.\n")
    print(markdown(results, f"@{DEFAULT_THRESHOLD:g}"))
    print()
    print(summary(results))
    print(f"\nMean AUROC over sources {_f(mean([r.stock.mean('auroc') for r in results]))}")
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
    print(f"\nJSON: {out.relative_to(REPO)}")
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
