"""Grounding (hallucination) quality: ``guard: grounding`` (signals) against two baselines, per source.

Reads ``../shared/data/grounding_dev.jsonl`` (never copied into the repository; skipped cleanly when
absent): HaluEval QA (right vs. hallucinated answers) and WiCE (claims vs. evidence; partially
supported counts as not grounded). The positive class is "not grounded". Rows are split into the
same two halves as ``python training/grounding_fit.py`` (fixed seed): the combiner was
fitted on ``fit`` only, so ``report`` is held out. The guard scores every sentence of an answer and
the answer's score is its worst claim, exactly as in the proxy.

Baselines: ``lexical`` = 1 - share of the answer's content words (lowercased, spaCy stop words
removed) found in the context; ``length`` = the answer's length in characters. HaluEval's right
answers are much shorter than its hallucinated ones, so every detector is also shown within
answer-length buckets, where length alone says little.

    .venv/bin/python benchmarks/grounding_quality.py [--data PATH] [--seed 7] [--threshold T] [--limit N]
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from spacy.lang.en.stop_words import STOP_WORDS

from guardproxy.guards.grounding.config import DEFAULT_THRESHOLD, GroundingConfig
from guardproxy.guards.grounding.guard import GroundingGuard

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # training/ is not part of the installed package
from training.grounding_fit import DEFAULT_DATA, DEFAULT_SEED, Row, auroc, read_rows, split_halves

BUCKETS = ((0, 20), (20, 50), (50, 100), (100, 10**9))
_WORD = re.compile(r"\w+")


def lexical_baseline(row: Row) -> float:
    context = set(_WORD.findall(row.context.lower()))
    words = [w for w in _WORD.findall(row.answer.lower()) if w not in STOP_WORDS]
    return 1 - sum(w in context for w in words) / len(words) if words else 0.0


def at_threshold(scores: Sequence[float], positive: Sequence[bool], threshold: float) -> tuple[float, float, float]:
    """(F1, accuracy, false-positive rate on grounded rows)."""
    fired = [s >= threshold for s in scores]
    tp = sum(f and p for f, p in zip(fired, positive, strict=True))
    fp = sum(f and not p for f, p in zip(fired, positive, strict=True))
    fn = sum(p and not f for f, p in zip(fired, positive, strict=True))
    negatives = sum(not p for p in positive)
    f1 = 2 * tp / (2 * tp + fp + fn) if tp else 0.0
    accuracy = sum(f == p for f, p in zip(fired, positive, strict=True)) / len(positive)
    return f1, accuracy, fp / negatives if negatives else float("nan")


def _table(title: str, groups: list[tuple[str, list[int]]], rows: Sequence[Row], guard_scores: Sequence[float],
           threshold: float) -> None:
    print(f"\n{title}")
    print("| group | rows | unsupported | guard AUROC | F1 | accuracy | FPR (grounded) | lexical AUROC "
          "| length AUROC |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, indexes in groups:
        if not indexes:
            continue
        positive = [not rows[i].grounded for i in indexes]
        scores = [guard_scores[i] for i in indexes]
        f1, accuracy, fpr = at_threshold(scores, positive, threshold)
        lexical = auroc([lexical_baseline(rows[i]) for i in indexes], positive)
        length = auroc([float(len(rows[i].answer)) for i in indexes], positive)
        print(f"| {name} | {len(indexes)} | {sum(positive)} | {auroc(scores, positive):.3f} | {f1:.3f} | "
              f"{accuracy:.3f} | {fpr:.3f} | {lexical:.3f} | {length:.3f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD)
    parser.add_argument("--limit", type=int, default=None, help="score only the first N rows (a quick look)")
    args = parser.parse_args()
    if not args.data.exists():
        print(f"skipped: {args.data} not found (the shared data sets are not part of the repository)")
        sys.exit(0)
    rows = read_rows(args.data)[: args.limit]
    halves = dict(zip(("fit", "report"), split_halves(rows, args.seed), strict=True))
    guard = GroundingGuard(GroundingConfig(threshold=args.threshold))
    guard.warm()
    scores = [max(score for _, score in guard.claim_scores(row.answer, [row.context]) or [(None, 0.0)])
              for row in rows]
    print(f"threshold {args.threshold}; seed {args.seed}; {len(rows)} rows ({args.data.name})")
    for half, indexes in halves.items():
        for source in sorted({rows[i].source for i in indexes}):
            chosen = [i for i in indexes if rows[i].source == source]
            groups = [("all", chosen)] + [
                (f"{lo}-{hi} chars" if hi < 10**9 else f">= {lo} chars",
                 [i for i in chosen if lo <= len(rows[i].answer) < hi]) for lo, hi in BUCKETS]
            _table(f"{source}, {half} half", groups, rows, scores, args.threshold)


if __name__ == "__main__":
    main()
