"""Leave one source out for a retrained implicit head (issue 14): measure only, nothing ships from it.

    .venv/bin/python benchmarks/toxicity_head_loso.py [--out benchmarks/results/loso-toxicity-head.json]

For each held-out source (OLID, ETHOS, ToxiGen, HateCheck) a logistic head on MiniLM embeddings
(the guard's own encoder) is fitted on the licence-allowed sources minus the held-out one: Davidson
(MIT), ToxiGen (MIT), HateCheck (CC BY 4.0). OLID and ETHOS are never fitted on. A row's score is the
head alone (``head``) or the guard's combination, the mean with the profanity model (``mean``),
on the whole text. The threshold is chosen at mean per-source FPR <= 0.10, two ways:

- ``train``: on 5-fold out-of-fold scores of the fitted sources only (nothing of the held-out source
  nor of OLID/ETHOS is seen);
- ``others``: on every other source's rows, OLID/ETHOS included, as ``benchmarks/loso.py`` does
  (comparable with the baseline table in ``benchmarks/README.md``).

``ceiling`` is the best F1 at FPR <= 0.10 with the held-out source's own threshold (in-sample).
HateCheck's counter-speech and reclaimed-slur rows get their FPR apart.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import numpy.typing as npt
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_predict

from guardproxy.embeddings import shared_encoder
from guardproxy.evaluation.datasets import source_name
from guardproxy.guards.toxicity.profanity import ProfanityScorer

REPO = Path(__file__).resolve().parent.parent
DATA = REPO.parent / "shared" / "data"
FILES = ("toxicity_train_davidson.jsonl", "toxicity_dev.jsonl", "toxicity_hatecheck.jsonl")
NAMES = {"OLID": "OLID", "intelligence-csd-auth-gr/Ethos-Hate-Speech-Dataset": "ETHOS",
         "microsoft/TOXIGEN": "ToxiGen", "paul-rottger/hatecheck-data": "HateCheck"}
ALLOWED = ("davidson", "ToxiGen", "HateCheck")
HELD_OUT = ("OLID", "ETHOS", "ToxiGen", "HateCheck")
GRID = np.round(np.arange(0.05, 0.96, 0.01), 2)
MAX_FPR = 0.10
Array = npt.NDArray[np.float64]
Mask = npt.NDArray[np.bool_]


def load() -> tuple[npt.NDArray[np.float32], Array, Mask, npt.NDArray[np.str_], npt.NDArray[np.str_]]:
    rows = []
    for name in FILES:
        for line in (DATA / name).read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                row["_source"] = "davidson" if name == FILES[0] else NAMES[source_name(row["meta"]["source"])]
                rows.append(row)
    texts = [row["text"] for row in rows]
    encoder = shared_encoder()
    vectors = np.vstack([encoder.encode(texts[i:i + 64]) for i in range(0, len(texts), 64)])
    profanity = ProfanityScorer().score(texts)
    return (vectors, profanity, np.array([bool(r["toxic"]) for r in rows]), np.array([r["_source"] for r in rows]),
            np.array([str(r["meta"].get("functionality", "")) for r in rows]))


def f1_fpr(scores: Array, gold: Mask, threshold: float) -> tuple[float, float, float, float]:
    fired = scores >= threshold
    tp, fp, fn = int((fired & gold).sum()), int((fired & ~gold).sum()), int((~fired & gold).sum())
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * tp / (2 * tp + fp + fn) if tp else 0.0
    return precision, recall, f1, fp / max(int((~gold).sum()), 1)


def choose(scores: Array, gold: Mask, sources: npt.NDArray[np.str_]) -> float:
    """The grid threshold of the best mean per-source F1 whose mean per-source FPR is <= MAX_FPR."""
    best, chosen = -1.0, float(GRID[-1])
    for threshold in GRID:
        figures = [f1_fpr(scores[sources == s], gold[sources == s], threshold) for s in np.unique(sources)]
        f1 = float(np.mean([f[2] for f in figures]))
        if np.mean([f[3] for f in figures]) <= MAX_FPR and f1 > best:
            best, chosen = f1, float(threshold)
    return chosen


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--C", type=float, default=1.0)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "loso-toxicity-head.json")
    args = parser.parse_args()
    vectors, profanity, gold, sources, functionality = load()
    results = []
    for held in HELD_OUT:
        fitted = np.isin(sources, [s for s in ALLOWED if s != held])
        model = LogisticRegression(C=args.C, class_weight="balanced", max_iter=5000)
        oof = cross_val_predict(model, vectors[fitted], gold[fitted], cv=5, method="predict_proba")[:, 1]
        model.fit(vectors[fitted], gold[fitted])
        head = model.predict_proba(vectors)[:, 1]
        head[fitted] = oof  # rows a head was fitted on only ever get out-of-fold scores
        for mode, scores in (("head", head), ("mean", (head + profanity) / 2)):
            mine = sources == held
            rules = {"train": choose(scores[fitted], gold[fitted], sources[fitted]),
                     "others": choose(scores[~mine & (sources != "davidson")], gold[~mine & (sources != "davidson")],
                                      sources[~mine & (sources != "davidson")]),
                     "ceiling": choose(scores[mine], gold[mine], sources[mine])}
            for rule, threshold in rules.items():
                p, r, f1, fpr = f1_fpr(scores[mine], gold[mine], threshold)
                entry = {"held_out": held, "score": mode, "threshold_rule": rule, "threshold": threshold,
                         "fitted_on": [s for s in ALLOWED if s != held], "precision": round(p, 3),
                         "recall": round(r, 3), "f1": round(f1, 3), "fpr": round(fpr, 3)}
                for subset in ("counter", "reclaimed"):
                    hard = mine & (np.char.find(functionality, subset) >= 0)
                    if hard.any():
                        entry[f"fpr_{subset}"] = round(float((scores[hard] >= threshold).mean()), 3)
                results.append(entry)
                print(json.dumps(entry))
    args.out.write_text(json.dumps({"C": args.C, "max_fpr": MAX_FPR, "results": results}, indent=1) + "\n",
                        encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
