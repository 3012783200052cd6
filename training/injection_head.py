"""Fit the injection head shipped in ``guardproxy/guards/injection/data/head.npz``, and choose its thresholds.

    .venv/bin/python training/injection_head.py [--data ../shared/data] [--out PATH]

Fits ONLY on permissively licensed rows (``injection_data.py`` lists them; OLID, ETHOS and LFQA
are never fitted on) and on the indirect set of ``benchmarks/indirect_corpus.py``. Deterministic:
lbfgs, fixed folds. ``benchmarks/injection_quality.py`` runs the same fits leaving one source out.

Thresholds are chosen on out-of-fold scores of the fitted rows only: the lowest threshold at which
no fitted negative source (each ordinary-text source, the benign rows of the injection sets; each
document carrier) has a false-positive rate above ``MAX_FPR``, or higher if out-of-fold recall stays
at ``MIN_RECALL`` or more there; the block threshold of the default policy the same way at ``BLOCK_FPR``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import sklearn
from injection_data import DATA, EmbeddingStore, LabelledText, data_present, direct_rows, indirect_rows
from sklearn.linear_model import LogisticRegression

from guardproxy.embeddings import shared_encoder
from guardproxy.guards.injection.head import HEAD_PATH, HeadWeights, Model, direct_features, window_features
from guardproxy.guards.injection.signals import NAMES, signal_matrix
from guardproxy.guards.injection.windows import text_windows

REGULARISATION_C = 16.0
MAX_FPR = 0.02
MIN_RECALL = 0.97
BLOCK_FPR = 0.005
FOLDS = 5
Floats = npt.NDArray[np.float64]


@dataclass
class Table:
    """Feature rows with what each belongs to. ``group`` keeps a document's windows in one fold."""

    features: Floats
    positive: npt.NDArray[np.bool_]
    source: npt.NDArray[np.str_]
    group: npt.NDArray[np.int64]
    family: npt.NDArray[np.str_]

    def take(self, mask: npt.NDArray[np.bool_]) -> Table:
        return Table(self.features[mask], self.positive[mask], self.source[mask], self.group[mask], self.family[mask])


def direct_table(store: EmbeddingStore, rows: Sequence[LabelledText]) -> Table:
    texts = [r.text for r in rows]
    windows = [[t[w.start:w.end] for w in text_windows(t)] or [t] for t in texts]
    flat = store.vectors([w for group in windows for w in group])
    bounds = np.cumsum([0, *(len(g) for g in windows)])
    features = direct_features([flat[bounds[i]:bounds[i + 1]] for i in range(len(texts))], signal_matrix(texts))
    return Table(features, np.array([r.positive for r in rows]), np.array([r.source for r in rows]),
                 np.arange(len(rows)), np.array([""] * len(rows)))


def indirect_table(store: EmbeddingStore, data: Path = DATA) -> Table:
    """One row per window of every corpus document; a window is positive if it holds most of the planted
    instruction (or lies inside it). ``group`` is the document, ``family`` the planted instruction's."""
    texts, labels, sources, groups, families = [], [], [], [], []
    for index, row in enumerate(indirect_rows(data)):
        for w in text_windows(row.text):
            overlap = 0 if row.span is None else max(0, min(w.end, row.span[1]) - max(w.start, row.span[0]))
            inside = row.span is not None and overlap >= 0.5 * min(w.end - w.start, row.span[1] - row.span[0])
            texts.append(row.text[w.start:w.end])
            labels.append(inside)
            sources.append(row.carrier)
            groups.append(index)
            families.append(row.family or "")
    features = window_features(store.vectors(texts), signal_matrix(texts))
    return Table(features, np.array(labels), np.array(sources), np.array(groups), np.array(families))


def fit(table: Table, c: float = REGULARISATION_C) -> Model:
    """Logistic regression where every source weighs the same, and both classes weigh the same."""
    weights = np.zeros(len(table.positive))
    for positive in (True, False):
        in_class = table.positive == positive
        names = np.unique(table.source[in_class])
        for name in names:
            mask = in_class & (table.source == name)
            weights[mask] = 1.0 / (mask.sum() * len(names))
    weights *= len(weights) / weights.sum()
    model = LogisticRegression(C=c, max_iter=5000)
    model.fit(table.features, table.positive, sample_weight=weights)
    return Model(np.asarray(model.coef_[0], dtype=np.float64), float(model.intercept_[0]))


def out_of_fold(table: Table, windowed: bool) -> tuple[Table, Floats]:
    """Each row's (or, ``windowed``, each document's) score from a fit that did not see it."""
    folds = table.group % FOLDS if windowed else np.arange(len(table.group)) % FOLDS
    scores = np.zeros(len(table.group))
    for fold in range(FOLDS):
        held = folds == fold
        scores[held] = fit(table.take(~held)).probabilities(table.features[held])
    if not windowed:
        return table, scores
    return documents(table, scores)


def documents(table: Table, window_scores: Floats) -> tuple[Table, Floats]:
    """Window rows folded into one row per document: positive if any window is, scored by the highest."""
    ids, inverse = np.unique(table.group, return_inverse=True)
    best = np.full(len(ids), -1.0)
    np.maximum.at(best, inverse, window_scores)
    positive = np.zeros(len(ids), dtype=bool)
    np.logical_or.at(positive, inverse, table.positive)
    first = np.unique(inverse, return_index=True)[1]
    # A planted document with no window holding its instruction still counts as planted.
    planted = np.zeros(len(ids), dtype=bool)
    np.logical_or.at(planted, inverse, table.family != "")
    docs = Table(np.zeros((len(ids), 0)), positive | planted, table.source[first], ids, table.family[first])
    return docs, best


def threshold_at(table: Table, scores: Floats, max_fpr: float, min_recall: float = MIN_RECALL) -> float:
    """The lowest threshold at which every negative source's false-positive rate is at most ``max_fpr``,
    raised as far as the positives allow (recall at least ``min_recall``): a margin for negatives
    of a kind the fit never saw."""
    positives = np.sort(scores[table.positive])
    missed = int(np.floor((1 - min_recall) * len(positives)))
    needed = float(positives[missed]) if len(positives) else 0.0
    for name in np.unique(table.source[~table.positive]):
        negatives = np.sort(scores[(~table.positive) & (table.source == name)])
        allowed = int(np.floor(max_fpr * len(negatives)))
        # Scores at or above the threshold flag: keep at most ``allowed`` of them.
        above = negatives[len(negatives) - allowed - 1] if allowed < len(negatives) else 0.0
        needed = max(needed, float(np.nextafter(above, 1.0)))
    return min(needed, 1.0)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def train(data: Path, store: EmbeddingStore) -> HeadWeights:
    rows = [r for r in direct_rows(data) if r.trainable]
    direct = direct_table(store, rows)
    indirect = indirect_table(store, data)
    oof_direct = out_of_fold(direct, windowed=False)
    oof_docs = out_of_fold(indirect, windowed=True)
    thresholds = {
        "threshold": threshold_at(*oof_direct, MAX_FPR), "block_threshold": threshold_at(*oof_direct, BLOCK_FPR),
        "indirect_threshold": threshold_at(*oof_docs, MAX_FPR),
    }
    counts = {name: int((direct.source == name).sum()) for name in np.unique(direct.source)}
    files = ["injection_dev.jsonl", "injection_deepset.jsonl", "topics_dev.jsonl", "topics_banking77.jsonl",
             "toxicity_train_davidson.jsonl", "toxicity_hatecheck.jsonl", "toxicity_dev.jsonl", "grounding_dev.jsonl"]
    metadata = {
        "model": "logistic regressions on all-MiniLM-L6-v2 int8 window embeddings + structural signals",
        "signals": list(NAMES), "C": REGULARISATION_C, "scikit_learn": sklearn.__version__,
        "direct_rows": counts, "indirect_windows": len(indirect.positive),
        "indirect_positive_windows": int(indirect.positive.sum()),
        "thresholds": {k: round(v, 4) for k, v in thresholds.items()},
        "threshold_rule": f"out-of-fold, every fitted negative source at FPR <= {MAX_FPR} (block: {BLOCK_FPR})",
        "files_sha256": {name: _sha256(data / name) for name in files},
        "not_trained_on": "OLID and ETHOS rows of toxicity_dev.jsonl, grounding_lfqa.jsonl (measurement only)",
    }
    print(json.dumps(metadata["thresholds"]), file=sys.stderr)
    return HeadWeights(fit(direct), fit(indirect), metadata)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--out", type=Path, default=HEAD_PATH)
    args = parser.parse_args(argv)
    if not data_present(args.data):
        print(f"training data not found in {args.data}", file=sys.stderr)
        return 2
    store = EmbeddingStore(shared_encoder().encode)
    weights = train(args.data, store)
    store.save()
    weights.save(args.out)
    print(f"wrote {args.out}")
    print(json.dumps(weights.metadata, indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
