"""Toxicity detection quality: stock alt-profanity-check against ``guard: toxicity``, per source.

Reads ``../shared/data/toxicity_dev.jsonl`` (OLID tweets, ETHOS comments, ToxiGen statements; never
copied into the repository) and prints precision, recall, F1, false-positive rate (fp / (fp + tn))
and AUROC per source and overall, for:

- stock: ``predict_prob`` on the whole text at 0.5 (the package's own cut-off);
- ours, profanity only (``implicit: false``) and ours, default (profanity + implicit head), each at its
  default threshold, scoring sentence windows exactly as the guard does (``ToxicityGuard.scan``).

The implicit head was trained on the ToxiGen rows: those figures are IN-SAMPLE. Judge generalisation
by OLID + ETHOS, which no shipped model saw. The default thresholds were chosen on half A of
OLID + ETHOS (random halves, fixed seed); half B shows whether they hold.

    .venv/bin/python benchmarks/toxicity_quality.py [--data PATH] [--limit N] [--seed 20240601]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

from guardproxy.guards import GuardContext, Segment
from guardproxy.guards.toxicity.config import ToxicityConfig
from guardproxy.guards.toxicity.guard import ToxicityGuard

REPO = Path(__file__).resolve().parent.parent
DATA = REPO.parent / "shared" / "data" / "toxicity_dev.jsonl"
SOURCES = (("OLID", "OLID"), ("ETHOS", "Ethos"), ("ToxiGen*", "TOXIGEN"))
BATCH = 64


@dataclass(frozen=True)
class Row:
    text: str
    toxic: bool
    source: str


def read_rows(path: Path, limit: int | None) -> list[Row]:
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        raw = json.loads(line)
        source = next((name for name, key in SOURCES if key in raw["meta"]["source"]), "other")
        rows.append(Row(raw["text"], bool(raw["toxic"]), source))
    return rows[:limit] if limit else rows


def stock_scores(rows: Sequence[Row]) -> np.ndarray:
    from profanity_check import predict_prob

    return np.asarray(predict_prob([r.text for r in rows]), dtype=np.float64)


def guard_scores(rows: Sequence[Row], implicit: bool) -> np.ndarray:
    """Each row's highest window score, from the guard itself (threshold 0 reports every window)."""
    guard = ToxicityGuard(ToxicityConfig(implicit=implicit, threshold=0.0))
    guard.warm()
    context = GuardContext("output")
    scores = np.zeros(len(rows))
    for offset in range(0, len(rows), BATCH):
        segments = [Segment(r.text) for r in rows[offset:offset + BATCH]]
        for finding in guard.scan(segments, context):
            index = offset + finding.segment
            scores[index] = max(scores[index], finding.score)
    return scores


def metrics(gold: np.ndarray, scores: np.ndarray, threshold: float) -> str:
    predicted = scores >= threshold
    tp = int(np.sum(gold & predicted))
    fp = int(np.sum(~gold & predicted))
    fn = int(np.sum(gold & ~predicted))
    tn = int(np.sum(~gold & ~predicted))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    fpr = fp / (fp + tn) if fp + tn else 0.0
    auroc = roc_auc_score(gold, scores) if 0 < gold.sum() < len(gold) else float("nan")
    return f"{precision:5.2f} {recall:5.2f} {f1:5.2f} {fpr:5.2f} {auroc:6.3f} {len(gold):6d}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--seed", type=int, default=20240601)
    args = parser.parse_args()
    if not args.data.is_file():
        print(f"skipped: {args.data} not found (the shared data is not in the repository)")
        return 0
    rows = read_rows(args.data, args.limit)
    gold = np.array([r.toxic for r in rows])
    source = np.array([r.source for r in rows])
    halves = np.array([random.Random(args.seed * 7919 + i).random() < 0.5 for i in range(len(rows))])
    unseen = source != "ToxiGen*"
    groups = [(name, source == name) for name, _ in SOURCES] + [
        ("OLID+ETHOS", unseen), ("  half A", unseen & halves), ("  half B", unseen & ~halves),
        ("overall", np.ones(len(rows), dtype=bool)),
    ]
    variants = [
        ("stock", stock_scores(rows), 0.5),
        ("ours profanity", guard_scores(rows, implicit=False), ToxicityConfig(implicit=False).effective_threshold()),
        ("ours default", guard_scores(rows, implicit=True), ToxicityConfig().effective_threshold()),
    ]
    print(f"{args.data} ({len(rows)} rows). * ToxiGen is in-sample for the implicit head (trained on it).")
    print(f"{'variant':<24} {'subset':<12} {'  P':>5} {'  R':>5} {' F1':>5} {'FPR':>5} {' AUROC':>6} {'rows':>6}")
    for name, scores, threshold in variants:
        for group, mask in groups:
            label = f"{name} @{threshold:.2f}"
            print(f"{label:<24} {group:<12} {metrics(gold[mask], scores[mask], threshold)}")
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
