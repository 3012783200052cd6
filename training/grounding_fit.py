"""Fit the grounding combiner (``guardproxy/guards/grounding/data/combiner.json``) on labelled grounding data.

    .venv/bin/python training/grounding_fit.py [--data ../shared/data/grounding_dev.jsonl] [--seed 7]

Rows are ``{"context", "answer", "grounded", "meta": {"source"}}`` (the shared
``grounding_dev.jsonl``: HaluEval QA and WiCE). They are split in two random
halves (fixed seed, stratified by source and label); the logistic regression is
fitted on the first half only, each source weighted equally and each class
balanced, and the figures of both halves are printed and written into the file's
provenance. The whole answer is one claim here (the guard scores each sentence
and keeps the worst). Refit after changing a signal in
``guardproxy/guards/grounding/signals.py``; then re-run
``benchmarks/grounding_quality.py`` and re-check ``DEFAULT_THRESHOLD``.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from guardproxy.guards.grounding.combiner import COMBINER_PATH, Combiner
from guardproxy.guards.grounding.signals import FEATURES, SignalExtractor

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "grounding_dev.jsonl"
DEFAULT_SEED = 7


@dataclass(frozen=True, slots=True)
class Row:
    context: str
    answer: str
    grounded: bool
    source: str


def source_name(meta_source: str) -> str:
    return "HaluEval" if "HaluEval" in meta_source else "WiCE" if "wice" in meta_source.lower() else "other"


def read_rows(path: Path) -> list[Row]:
    rows = []
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                raw = json.loads(line)
                rows.append(Row(raw["context"], raw["answer"], raw["grounded"], source_name(raw["meta"]["source"])))
    return rows


def split_halves(rows: Sequence[Row], seed: int) -> tuple[list[int], list[int]]:
    """(fit, report) row indexes: a random half of every (source, label) group each."""
    groups: dict[tuple[str, bool], list[int]] = defaultdict(list)
    for i, row in enumerate(rows):
        groups[(row.source, row.grounded)].append(i)
    fit: list[int] = []
    report: list[int] = []
    generator = random.Random(seed)
    for key in sorted(groups):
        members = groups[key]
        generator.shuffle(members)
        fit.extend(members[: len(members) // 2])
        report.extend(members[len(members) // 2 :])
    return sorted(fit), sorted(report)


def feature_matrix(extractor: SignalExtractor, rows: Sequence[Row]) -> npt.NDArray[np.float64]:
    lines = []
    for row in rows:
        signals = extractor.signals([row.answer], extractor.context_index([row.context]))[0].as_features()
        lines.append([signals[name] for name in FEATURES])
    return np.array(lines, dtype=np.float64)


def fit_combiner(features: npt.NDArray[np.float64], rows: Sequence[Row]) -> Combiner:
    from sklearn.linear_model import LogisticRegression

    labels = np.array([not row.grounded for row in rows])
    counts: dict[tuple[str, bool], int] = defaultdict(int)
    for row in rows:
        counts[(row.source, row.grounded)] += 1
    weights = np.array([1.0 / counts[(row.source, row.grounded)] for row in rows])
    weights *= len(rows) / weights.sum()
    model = LogisticRegression(C=1.0, max_iter=1000)
    model.fit(features, labels, sample_weight=weights)
    return Combiner(dict(zip(FEATURES, (float(c) for c in model.coef_[0]), strict=True)), float(model.intercept_[0]))


def auroc(scores: Sequence[float], positive: Sequence[bool]) -> float:
    """Probability that a random positive outscores a random negative (ties count half)."""
    from sklearn.metrics import roc_auc_score

    if len(set(positive)) < 2:
        return float("nan")
    return float(roc_auc_score(positive, scores))


def build_extractor(cache_size: int = 0) -> SignalExtractor:
    from guardproxy.embeddings import CachedEncoder, shared_encoder
    from guardproxy.guards.pii.analyzer import shared_nlp_engine

    nlp = shared_nlp_engine("ner", "en").nlp["en"]  # type: ignore[attr-defined]
    return SignalExtractor(nlp, CachedEncoder(shared_encoder(), 0), cache_size)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--out", type=Path, default=COMBINER_PATH)
    args = parser.parse_args(argv)
    if not args.data.is_file():
        print(f"training data not found: {args.data}", file=sys.stderr)
        return 2
    rows = read_rows(args.data)
    fit, report = split_halves(rows, args.seed)
    features = feature_matrix(build_extractor(), rows)
    combiner = fit_combiner(features[fit], [rows[i] for i in fit])
    figures: dict[str, dict[str, float]] = {}
    for half, indexes in (("fit", fit), ("report", report)):
        for source in sorted({rows[i].source for i in indexes}):
            chosen = [i for i in indexes if rows[i].source == source]
            scores = [combiner.probability(dict(zip(FEATURES, features[i], strict=True))) for i in chosen]
            figures[f"{half}/{source}"] = {"rows": len(chosen),
                                           "auroc": round(auroc(scores, [not rows[i].grounded for i in chosen]), 4)}
    provenance = {"data": args.data.name, "rows": len(rows), "fit_rows": len(fit), "seed": args.seed,
                  "model": "sklearn LogisticRegression(C=1.0), source- and class-balanced sample weights",
                  "unit": "whole answer as one claim", "auroc_answer_as_one_claim": figures,
                  "refit": "python training/grounding_fit.py --data ../shared/data/grounding_dev.jsonl"}
    args.out.write_text(combiner.to_json(provenance), encoding="utf-8")
    print(combiner.to_json(provenance))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
