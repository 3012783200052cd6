"""Quality of ``guard: injection`` (issue 15): per source and leave one source out, beside the keyword baseline.

    .venv/bin/python benchmarks/injection_quality.py [--out benchmarks/results/injection-quality.json]

Direct injection: every source of ``training/injection_data.py`` in turn is left out: the direct
model is fitted on the others and its threshold chosen on their out-of-fold scores (the rule of
``training/injection_head.py``), then the left-out source is scored: recall for a positive source,
false-positive rate for a negative one. OLID and ETHOS (non-toxic rows) are never fitted on, so
the shipped model's figures on them are already left-out figures.

Indirect injection, per document (a document's score is its highest window's), on
``benchmarks/indirect_corpus.py``: leave one carrier out (HaluEval, WiCE, emails, tables), and
leave one instruction family out (fitted without the documents planted with that family, measured
on them: a style never seen). LFQA evidence documents (never fitted on) measure false positives.

AUROC: a positive source against every negative row, a negative source against every positive
row. Baseline: the six phrases of the ``prompt_injection`` keywords entry the default policy had
before this guard. Embeddings are cached in ``benchmarks/.cache/injection/`` (gitignored).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "training"))

from injection_data import DATA, EmbeddingStore, data_present, direct_rows, indirect_rows, lfqa_documents  # noqa: E402
from injection_head import (  # noqa: E402
    MAX_FPR,
    Table,
    direct_table,
    documents,
    fit,
    indirect_table,
    out_of_fold,
    threshold_at,
)

from guardproxy.embeddings import shared_encoder  # noqa: E402
from guardproxy.guards.base import GuardContext, Segment  # noqa: E402
from guardproxy.guards.injection.head import window_features  # noqa: E402
from guardproxy.guards.injection.signals import signal_matrix  # noqa: E402
from guardproxy.guards.injection.windows import text_windows  # noqa: E402
from guardproxy.guards.keywords import KeywordsConfig, KeywordsGuard  # noqa: E402

BASELINE_TERMS = ["ignore all previous instructions", "ignore previous instructions", "ignore the above instructions",
                  "disregard your system prompt", "disregard all prior instructions", "reveal your system prompt"]
Floats = npt.NDArray[np.float64]


def auroc(scores: Floats, positive: npt.NDArray[np.bool_]) -> float | None:
    """Probability that a positive outranks a negative (ties count half)."""
    pos, neg = scores[positive], scores[~positive]
    if not len(pos) or not len(neg):
        return None
    order = np.argsort(np.concatenate([pos, neg]), kind="mergesort")
    ranks = np.empty(len(order))
    values = np.concatenate([pos, neg])[order]
    ranks[order] = np.arange(1, len(order) + 1)
    for value in np.unique(values):  # average ranks of ties
        tied = np.concatenate([pos, neg]) == value
        ranks[tied] = ranks[tied].mean()
    return float((ranks[:len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def keyword_hits(texts: list[str]) -> Floats:
    guard = KeywordsGuard(KeywordsConfig(terms=BASELINE_TERMS, label="prompt_injection"))
    context = GuardContext("input")
    return np.array([1.0 if guard.scan([Segment(t, role="user")], context) else 0.0 for t in texts])


def figures(scores: Floats, positive: npt.NDArray[np.bool_], threshold: float, others: Floats) -> dict[str, Any]:
    """Recall (positives) or FPR (negatives) of one source at ``threshold``; AUROC against ``others``."""
    flagged = scores >= threshold
    is_positive = bool(positive.all())
    row: dict[str, Any] = {"rows": len(scores), "kind": "positive" if is_positive else "negative"}
    row["recall" if is_positive else "fpr"] = round(float(flagged.mean()), 4)
    both = np.concatenate([scores, others])
    labels = np.concatenate([positive, ~positive[:1].repeat(len(others))])
    value = auroc(both, labels)
    row["auroc"] = None if value is None else round(value, 4)
    return row


def direct_report(store: EmbeddingStore, data: Path) -> dict[str, Any]:
    rows = direct_rows(data)
    table = direct_table(store, rows)
    trainable = np.array([r.trainable for r in rows])
    baseline = keyword_hits([r.text for r in rows])
    shipped_model = fit(table.take(trainable))
    shipped_threshold = threshold_at(*out_of_fold(table.take(trainable), windowed=False), MAX_FPR)
    shipped = shipped_model.probabilities(table.features)
    report: dict[str, Any] = {"threshold": round(shipped_threshold, 4), "sources": {}}
    for name in dict.fromkeys(r.source for r in rows):
        here = table.source == name
        positive = table.positive[here]
        others = ~table.positive if positive.all() else table.positive
        entry = {"in_sample": figures(shipped[here], positive, shipped_threshold, shipped[others & ~here])}
        if trainable[here].all():
            fitted = trainable & ~here
            model = fit(table.take(fitted))
            threshold = threshold_at(*out_of_fold(table.take(fitted), windowed=False), MAX_FPR)
            scores = model.probabilities(table.features)
            entry["left_out"] = {**figures(scores[here], positive, threshold, scores[others & ~here]),
                                 "threshold": round(threshold, 4)}
        else:
            entry["left_out"] = entry["in_sample"]  # never fitted on
        entry["baseline"] = figures(baseline[here], positive, 0.5, baseline[others & ~here])
        report["sources"][name] = entry
        print(f"  direct {name}: {json.dumps(entry)}", file=sys.stderr)
    return report


def _doc_figures(docs: Table, scores: Floats, mask: npt.NDArray[np.bool_], threshold: float) -> dict[str, Any]:
    pos, neg = mask & docs.positive, mask & ~docs.positive
    value = auroc(scores[mask], docs.positive[mask])
    return {"documents": int(mask.sum()), "recall": round(float((scores[pos] >= threshold).mean()), 4) if pos.any()
            else None, "fpr": round(float((scores[neg] >= threshold).mean()), 4) if neg.any() else None,
            "auroc": None if value is None else round(value, 4), "threshold": round(threshold, 4)}


def _fit_and_threshold(windows: Table, mask: npt.NDArray[np.bool_]) -> tuple[Any, float]:
    fitted = windows.take(mask)
    return fit(fitted), threshold_at(*out_of_fold(fitted, windowed=True), MAX_FPR)


def indirect_report(store: EmbeddingStore, data: Path) -> dict[str, Any]:
    windows = indirect_table(store, data)
    every = np.ones(len(windows.positive), dtype=bool)
    model, threshold = _fit_and_threshold(windows, every)
    docs, shipped = documents(windows, model.probabilities(windows.features))
    report: dict[str, Any] = {"threshold": round(threshold, 4), "carriers": {}, "families": {}}
    corpus = indirect_rows(data)
    baseline_docs = keyword_hits([row.text for row in corpus])
    # Left out in turn: each carrier (the documents' source), then each planted instruction family.
    for key, label, column, groups in (("carriers", "carrier", "source", list(np.unique(docs.source))),
                                       ("families", "family", "family", sorted(set(docs.family) - {""}))):
        for name in groups:
            here = getattr(docs, column) == name
            held, held_threshold = _fit_and_threshold(windows, getattr(windows, column) != name)
            _, left_scores = documents(windows, held.probabilities(windows.features))
            report[key][str(name)] = {
                "in_sample": _doc_figures(docs, shipped, here, threshold),
                "left_out": _doc_figures(docs, left_scores, here, held_threshold),
                "baseline": _doc_figures(docs, baseline_docs, here, 0.5)}
            print(f"  {label} {name}: {json.dumps(report[key][str(name)])}", file=sys.stderr)
    lfqa = lfqa_documents(data)
    texts = [[d[w.start:w.end] for w in text_windows(d)] for d in lfqa]
    flat = [w for group in texts for w in group]
    scores = model.probabilities(window_features(store.vectors(flat), signal_matrix(flat)))
    bounds = np.cumsum([0, *(len(g) for g in texts)])
    best = np.array([scores[bounds[i]:bounds[i + 1]].max() for i in range(len(lfqa))])
    report["lfqa_clean"] = {"documents": len(lfqa), "fpr": round(float((best >= threshold).mean()), 4),
                            "baseline_fpr": round(float(keyword_hits(lfqa).mean()), 4)}
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "injection-quality.json")
    args = parser.parse_args(argv)
    if not data_present(args.data):
        print(f"skipped: the dev data is not in {args.data}", file=sys.stderr)
        return 0
    store = EmbeddingStore(shared_encoder().encode)
    report = {"direct": direct_report(store, args.data), "indirect": indirect_report(store, args.data)}
    store.save()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
