"""Topic-ban quality: ``method: keywords`` against ``method: semantic`` on CLINC150 queries.

Reads ``../shared/data/topics_dev.jsonl`` (never copied into the repository; skipped cleanly when
absent). "Banned" means the row's domain is one of the pair; everything else, out-of-scope included,
should pass. Pair A (banking + travel) is ``policies/examples/topics.yaml`` as shipped; pair B
(credit_cards + work) is defined below with the same rules (one-sentence description, at most five
examples, at most 30 keywords, all written by hand, none taken from the data).

The semantic threshold is calibrated on a random half of pair A's rows (fixed seed; the one that
maximises F1 there) and then only confirmed, unchanged, on the other half and on pair B. The
operating point with precision >= 0.90 on the calibration half is printed too.

    .venv/bin/python benchmarks/topics_quality.py [--data PATH] [--seed 20240601] [--threshold T]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from guardproxy.evaluation.scoring import Confusion
from guardproxy.guards.base import GuardContext, Segment
from guardproxy.guards.topics.config import TopicsConfig
from guardproxy.guards.topics.guard import TopicsGuard

REPO = Path(__file__).resolve().parent.parent
DATA = REPO.parent / "shared" / "data" / "topics_dev.jsonl"
POLICY = REPO / "policies" / "examples" / "topics.yaml"

PAIR_B: list[dict[str, Any]] = [
    {"name": "credit_cards",
     "description": "Credit cards: applying for a card, credit limits and credit scores, rewards points, annual fees, "
                    "APR, declined, lost or expiring cards, card payments and foreign transaction fees.",
     "examples": ["Why was my credit card declined at the store?", "Can you raise the limit on my Visa card?",
                  "How many reward points have I earned on my card?", "I lost my credit card, please block it.",
                  "What's the interest rate on my credit card?"],
     "keywords": ["credit card", "card", "visa card", "mastercard", "amex", "credit limit", "credit score", "rewards",
                  "reward points", "cash back", "annual fee", "apr", "interest rate", "declined", "lost card",
                  "stolen card", "card expire", "new card", "replacement card", "card payment",
                  "foreign transaction fee", "balance transfer", "credit report", "statement balance",
                  "minimum payment"]},
    {"name": "work",
     "description": "Work: the job and employer, paychecks and payday, direct deposit, income and taxes, insurance "
                    "and benefits, paid time off, meetings, and W-2 forms.",
     "examples": ["How many vacation days do I have left this year?", "When is my next paycheck coming?",
                  "Schedule a meeting with my manager tomorrow at ten.",
                  "Who do I talk to in HR about my health benefits?", "I need to request a day off next week."],
     "keywords": ["job", "work", "employer", "boss", "manager", "coworker", "paycheck", "payday", "salary", "income",
                  "direct deposit", "w-2", "taxes", "insurance", "health plan", "benefits", "401k", "pto",
                  "paid time off", "vacation days", "sick day", "day off", "meeting", "schedule a meeting", "hr",
                  "human resources", "promotion", "raise", "office", "timesheet"]},
]


def pair_a_topics() -> list[dict[str, Any]]:
    policy = yaml.safe_load(POLICY.read_text())
    topics: list[dict[str, Any]] = policy["chains"]["default"]["input"][0]["topics"]
    return topics


def item_scores(topics: list[dict[str, Any]], method: str, texts: Sequence[str]) -> list[float]:
    """Each text's highest finding score (0 when nothing fired) with the threshold at 0."""
    guard = TopicsGuard(TopicsConfig.model_validate({"topics": topics, "method": method, "threshold": 0.0}))
    guard.warm()
    context = GuardContext("input")
    scores = []
    for text in texts:
        findings = guard.scan([Segment(text, (), "user")], context)
        assert isinstance(findings, list)  # keywords and semantic answer at once
        scores.append(max((f.score for f in findings), default=0.0))
    return scores


def confusion(scores: Sequence[float], gold: Sequence[bool], threshold: float) -> Confusion:
    tally = Confusion()
    for score, positive in zip(scores, gold, strict=True):
        tally.count(positive, score >= threshold)
    return tally


def calibrate(scores: Sequence[float], gold: Sequence[bool], min_precision: float = 0.0) -> float:
    """The threshold (0.01 steps) with the best F1 among those reaching ``min_precision``."""
    best = (-1.0, 1.0)
    for step in range(20, 100):
        tally = confusion(scores, gold, step / 100)
        if (tally.precision or 0) >= min_precision and (tally.f1 or 0) > best[0]:
            best = (tally.f1 or 0, step / 100)
    return best[1]


def row(name: str, tally: Confusion) -> str:
    def fmt(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.3f}"

    return (f"{name:<44} {tally.items:>5} {tally.tp:>4} {tally.fp:>4} {tally.fn:>4}  "
            f"{fmt(tally.precision):>9} {fmt(tally.recall):>6} {fmt(tally.f1):>6}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--seed", type=int, default=20240601)
    parser.add_argument("--threshold", type=float, default=None, help="skip calibration and use this threshold")
    args = parser.parse_args()
    if not args.data.exists():
        print(f"skipped: {args.data} not found (the shared data lives outside the repository)")
        return 0
    rows = [json.loads(line) for line in args.data.read_text(encoding="utf-8").splitlines() if line.strip()]
    texts, domains = [r["text"] for r in rows], [r["topic"] for r in rows]
    order = list(range(len(texts)))
    random.Random(args.seed).shuffle(order)
    half_a, half_b = sorted(order[: len(order) // 2]), sorted(order[len(order) // 2:])

    pairs = {"A banking+travel": (pair_a_topics(), {"banking", "travel"}),
             "B credit_cards+work": (PAIR_B, {"credit_cards", "work"})}
    results = {(p, m): item_scores(topics, m, texts) for p, (topics, _) in pairs.items() for m in ("keywords",
                                                                                                     "semantic")}
    gold = {p: [d in banned for d in domains] for p, (_, banned) in pairs.items()}
    scores_a, gold_a = results[("A banking+travel", "semantic")], gold["A banking+travel"]

    def pick(rows: Sequence[int], floor: float) -> float:
        return calibrate([scores_a[i] for i in rows], [gold_a[i] for i in rows], floor)

    threshold = args.threshold if args.threshold is not None else pick(half_a, 0.0)
    precise = pick(half_a, 0.90)
    print(f"semantic threshold: {threshold:.2f} (best F1 on calibration half 1 of pair A, seed {args.seed}); "
          f"precision >= 0.90 on half 1 needs {precise:.2f}\n")
    print(f"{'pair / method / rows':<44} {'items':>5} {'tp':>4} {'fp':>4} {'fn':>4}  {'precision':>9} "
          f"{'recall':>6} {'f1':>6}")
    for pair in pairs:
        for method in ("keywords", "semantic"):
            for label, rows in (("all", order), ("half 1 (calibration)", half_a), ("half 2 (held out)", half_b)):
                scores = results[(pair, method)]
                cut = threshold if method == "semantic" else 1.0
                tally = confusion([scores[i] for i in rows], [gold[pair][i] for i in rows], cut)
                print(row(f"{pair} / {method} / {label}", tally))
            if method == "semantic":
                scores = results[(pair, method)]
                print(row(f"{pair} / semantic@{precise:.2f} / all", confusion(scores, gold[pair], precise)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
