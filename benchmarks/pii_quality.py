"""PII detection quality: stock Presidio against guardproxy's recognizers, on the shared synthetic set.

Reads ``../shared/data/pii_dev.jsonl`` (presidio-research's synthetic sentences; never copied into
the repository) and prints, per analyzer configuration, type-aware recall per entity type, overall
type-aware precision/recall/F1 over the targeted types, and analysis time per row. Figures come
from ``guardproxy.evaluation.scoring`` (the same code as ``guardproxy eval``); "ours" is built with
``build_analyzer`` and ``quality_recognizers``, exactly what the PII guard runs.

The rows are also split into two random halves (fixed seed): thresholds were tuned on half A, and
half B is the check that they hold on rows they were not tuned on.

    .venv/bin/python benchmarks/pii_quality.py [--data PATH] [--limit N] [--seed 20240601]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from presidio_analyzer import AnalyzerEngine, EntityRecognizer

from guardproxy.evaluation.datasets import Dataset, LabelledSpan, read_dataset
from guardproxy.evaluation.runner import Observation
from guardproxy.evaluation.scoring import EntityTally, Scores, score
from guardproxy.guards.pii.analyzer import NlpMode, build_analyzer
from guardproxy.guards.pii.recognizers import (
    DEFAULT_ENTITIES,
    DEFAULT_ENTITY_THRESHOLDS,
    DEFAULT_SCORE_THRESHOLD,
    quality_recognizers,
)

REPO = Path(__file__).resolve().parent.parent
DATA = REPO.parent / "shared" / "data" / "pii_dev.jsonl"
# Gold types the guard targets by default; STREET_ADDRESS and GPE are scored together as "addr+place".
TARGETED = ("PERSON", "EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "US_SSN", "IBAN_CODE", "IP_ADDRESS")
PLACES = ("STREET_ADDRESS", "GPE")


@dataclass(frozen=True)
class Variant:
    name: str
    mode: NlpMode
    ours: bool
    threshold: float
    per_entity: dict[str, float]


VARIANTS = [
    Variant("stock presidio @0.35", "ner", False, 0.35, {}),
    Variant("stock presidio @0.5", "ner", False, 0.5, {}),
    Variant("ours ner (defaults)", "ner", True, DEFAULT_SCORE_THRESHOLD, DEFAULT_ENTITY_THRESHOLDS),
    Variant("ours ner @0.55", "ner", True, 0.55, {**DEFAULT_ENTITY_THRESHOLDS, "STREET_ADDRESS": 0.55}),
    Variant("ours pattern (defaults)", "pattern", True, DEFAULT_SCORE_THRESHOLD, DEFAULT_ENTITY_THRESHOLDS),
]


def observe(analyzer: AnalyzerEngine, variant: Variant, texts: Sequence[str]) -> list[Observation]:
    """Analyze every text once; the guard's rule applies: a finding counts at or above its type's threshold."""
    lowest = min([variant.threshold, *variant.per_entity.values()])
    observations = []
    for text in texts:
        started = time.perf_counter()
        results = analyzer.analyze(text, language="en", entities=DEFAULT_ENTITIES, score_threshold=lowest)
        seconds = time.perf_counter() - started
        spans = tuple(LabelledSpan(r.start, r.end, r.entity_type) for r in results
                      if r.score >= variant.per_entity.get(r.entity_type, variant.threshold))
        observations.append(Observation(bool(spans), spans, 0, seconds))
    return observations


def _recall(tallies: Sequence[EntityTally | None]) -> str:
    gold = sum(t.gold for t in tallies if t is not None)
    found = sum(t.found for t in tallies if t is not None)
    return f"{found / gold:.3f}" if gold else "n/a"


def _shown(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


HEADER = ["configuration", "PERSON", "EMAIL", "PHONE", "CARD", "SSN", "IBAN", "IP", "addr+place",
          "P", "R", "F1", "P(any)", "ms/row"]
ROW = "{:<25}" + "{:>8}" * 7 + "{:>11}" + "{:>7}" * 4 + "{:>8}"


def table_row(name: str, scores: Scores, any_label: Scores) -> str:
    typed, spans = scores.typed, any_label.spans
    assert typed is not None and spans is not None
    per_type = [_recall([typed.per_type.get(label)]) for label in TARGETED]
    places = _recall([typed.per_type.get(label) for label in PLACES])
    overall = typed.overall
    return ROW.format(name, *per_type, places, _shown(overall.precision), _shown(overall.recall),
                      _shown(overall.f1), _shown(spans.precision), f"{scores.latency.mean:.2f}")


def subset(dataset: Dataset, indices: Sequence[int]) -> Dataset:
    return Dataset(dataset.schema, [dataset.items[i] for i in indices], dataset.gold_labels)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--seed", type=int, default=20240601, help="seed of the random half split")
    args = parser.parse_args(argv)
    if not args.data.exists():
        print(f"skipped: {args.data} is not here (the shared data lives outside the repository)")
        return 0
    positive = frozenset(TARGETED + PLACES)
    dataset = read_dataset(args.data, positive, args.limit)
    all_gold = read_dataset(args.data, None, args.limit)
    order = list(range(len(dataset.items)))
    random.Random(args.seed).shuffle(order)
    halves = {"all rows": order, "half A (tuned)": sorted(order[: len(order) // 2]),
              "half B (check)": sorted(order[len(order) // 2:])}
    texts = [item.text for item in dataset.items]
    runs: dict[str, list[Observation]] = {}
    for variant in VARIANTS:
        extra: list[EntityRecognizer]
        extra, remove = quality_recognizers("en") if variant.ours else ([], [])
        analyzer = build_analyzer(variant.mode, "en", extra, remove)
        analyzer.analyze("warm up", language="en")
        runs[variant.name] = observe(analyzer, variant, texts)
    print(f"data: {args.data} ({len(texts)} rows); type-aware span matching (LOCATION ~ GPE/STREET_ADDRESS), "
          f"P/R/F1 over {', '.join(sorted(positive))}; P(any): label-agnostic span precision against gold spans "
          "of any label (ORGANIZATION, DATE_TIME, ... included)")
    for title, indices in halves.items():
        print(f"\n{title}: {len(indices)} rows")
        print(ROW.format(*HEADER))
        for name, observations in runs.items():
            chosen = [observations[i] for i in indices]
            print(table_row(name, score(subset(dataset, indices), chosen, positive),
                            score(subset(all_gold, indices), chosen, None)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
