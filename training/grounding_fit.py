"""Fit the grounding combiner (``guardproxy/guards/grounding/data/combiner.json``) on labelled grounding data.

    .venv/bin/python training/grounding_fit.py [--data ../shared/data/grounding_dev.jsonl]

Rows are ``{"context", "answer", "grounded", "meta": {"source"}}`` (the shared
``grounding_dev.jsonl``: HaluEval QA and WiCE). Each answer is split into claims and each claim
scored exactly as the guard does (``claim_features``); the logistic regression is fitted on
every claim, each source weighted equally and each class within it balanced. Only
length-normalised signals are read (``FITTED``). The figures that matter are left out:
``benchmarks/loso_grounding.py`` refits this combiner on all sources but one, for each in turn,
and picks the shipped ``DEFAULT_THRESHOLD``. Refit after changing a signal in
``guardproxy/guards/grounding/signals.py`` (or the entailment head), then re-run that benchmark.

Not shipped yet: the ``combiner.json`` in the package is still the earlier fit (whole answers, one half of
each source, six signals). This script's per-claim fit was measured and did not beat it on every
left-out source (benchmarks/README.md, "Grounding across sources"); ``--out`` elsewhere to look at it.
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

from guardproxy.guards.grounding.claims import split_claims
from guardproxy.guards.grounding.combiner import COMBINER_PATH, Combiner
from guardproxy.guards.grounding.config import GroundingConfig
from guardproxy.guards.grounding.nli import load_head
from guardproxy.guards.grounding.signals import FEATURES, SignalExtractor

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "grounding_dev.jsonl"
DEFAULT_SEED = 7
# The sources the shipped combiner is fitted on: LFQA has no licence and is measured only.
FIT_SOURCES = frozenset({"HaluEval", "WiCE"})
# The signals the combiner reads, chosen leave-one-source-out on HaluEval and WiCE (benchmarks/README.md,
# "Grounding across sources"). Left out: ``facts_missing_count`` (a count grows with the claim's length, and
# HaluEval's hallucinated answers are longer than its right ones), ``semantic_support`` (on HaluEval a longer,
# hallucinated answer is closer to the context's sentences than a right one of a few words, so its weight
# there is length in disguise) and ``bigram_missing`` (fitted on HaluEval it ranks WiCE's claims worse).
FITTED = ("lexical_missing", "window_missing", "facts_missing", "entailment_support")


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


def claim_features(extractor: SignalExtractor, rows: Sequence[Row],
                   config: GroundingConfig | None = None) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """(owner row, signals in ``FEATURES`` order) of every claim of every row, split and cut as the guard
    does (``min_claim_chars``, ``max_context_chars``); a row without a claim has none."""
    config = config or GroundingConfig()
    owners, lines = [], []
    for i, row in enumerate(rows):
        texts = [row.answer[c.start : c.end] for c in split_claims(row.answer, config.min_claim_chars)]
        if not texts:
            continue
        index = extractor.context_index([row.context[: config.max_context_chars]])
        for signals in extractor.signals(texts, index):
            owners.append(i)
            lines.append([signals.as_features()[name] for name in FEATURES])
    return np.array(owners, dtype=np.int64), np.array(lines, dtype=np.float64).reshape(len(lines), len(FEATURES))


def fit_combiner(features: npt.NDArray[np.float64], unsupported: npt.NDArray[np.bool_],
                 sources: Sequence[str], names: Sequence[str] = FITTED) -> Combiner:
    """A logistic regression over the ``names`` columns of claim ``features``, each source weighing the same
    and each class within it the same (a source's size or its share of unsupported claims is not learned)."""
    from sklearn.linear_model import LogisticRegression

    counts: dict[tuple[str, bool], int] = defaultdict(int)
    for source, label in zip(sources, unsupported, strict=True):
        counts[(source, bool(label))] += 1
    weights = np.array([1.0 / counts[(s, bool(y))] for s, y in zip(sources, unsupported, strict=True)])
    weights *= len(weights) / weights.sum()
    columns = [FEATURES.index(name) for name in names]
    model = LogisticRegression(C=1.0, max_iter=1000)
    model.fit(features[:, columns], unsupported, sample_weight=weights)
    return Combiner(dict(zip(names, (float(c) for c in model.coef_[0]), strict=True)), float(model.intercept_[0]))


def answer_scores(combiner: Combiner, owners: npt.NDArray[np.int64], features: npt.NDArray[np.float64],
                  rows: int) -> npt.NDArray[np.float64]:
    """Each row's worst claim's P(unsupported), as the guard decides (0 for a row without a claim)."""
    scores = np.zeros(rows)
    for owner, line in zip(owners, features, strict=True):
        scores[owner] = max(scores[owner], combiner.probability(dict(zip(FEATURES, line, strict=True))))
    return scores


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
    return SignalExtractor(nlp, CachedEncoder(shared_encoder(), 0), cache_size, load_head())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--out", type=Path, default=COMBINER_PATH)
    args = parser.parse_args(argv)
    if not args.data.is_file():
        print(f"training data not found: {args.data}", file=sys.stderr)
        return 2
    rows = [row for row in read_rows(args.data) if row.source in FIT_SOURCES]
    owners, features = claim_features(build_extractor(), rows)
    unsupported = np.array([not rows[i].grounded for i in owners])
    sources = [rows[i].source for i in owners]
    combiner = fit_combiner(features, unsupported, sources)
    figures = {}
    scores = answer_scores(combiner, owners, features, len(rows))
    for source in sorted(set(sources)):
        chosen = [i for i, row in enumerate(rows) if row.source == source]
        figures[source] = {"rows": len(chosen), "claims": sources.count(source),
                           "auroc_in_sample": round(auroc(scores[chosen], [not rows[i].grounded for i in chosen]), 4)}
    provenance = {"data": args.data.name, "sources": sorted(FIT_SOURCES), "figures": figures,
                  "model": "sklearn LogisticRegression(C=1.0), source- and class-balanced sample weights",
                  "unit": "claim (answer sentence), as the guard scores it; a claim of an unsupported answer counts "
                          "as unsupported",
                  "left_out_figures": "benchmarks/loso_grounding.py refits this leave-one-source-out",
                  "refit": "python training/grounding_fit.py --data ../shared/data/grounding_dev.jsonl"}
    args.out.write_text(combiner.to_json(provenance), encoding="utf-8")
    print(combiner.to_json(provenance))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
