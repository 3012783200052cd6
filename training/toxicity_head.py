"""Train the implicit-hate head shipped in ``guardproxy/guards/toxicity/data/head.npz``.

    python training/toxicity_head.py [--data ../shared/data] [--out PATH]

Trains ONLY on permissively licensed rows: every row of
``toxicity_train_davidson.jsonl`` (t-davidson, MIT) and the ToxiGen rows of
``toxicity_dev.jsonl`` (microsoft/TOXIGEN, MIT). OLID and ETHOS rows are never
read for training (their licences forbid shipping a model made from them); they
are only used to measure. Deterministic: same data, same weights (lbfgs, no
random state involved). The metadata records what was used, with file hashes.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import sklearn
from sklearn.linear_model import LogisticRegression

from guardproxy.embeddings import shared_encoder
from guardproxy.guards.toxicity.head import HEAD_PATH, HeadWeights

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data"
DAVIDSON = "toxicity_train_davidson.jsonl"
DEV = "toxicity_dev.jsonl"
TOXIGEN_SOURCE_PREFIX = "microsoft/TOXIGEN"
REGULARISATION_C = 1.0
BATCH = 64


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def training_rows(data: Path) -> tuple[list[str], list[bool], dict[str, int]]:
    """Texts, labels and row counts per source: all Davidson rows plus ToxiGen rows only."""
    texts: list[str] = []
    labels: list[bool] = []
    counts = {"davidson": 0, "toxigen": 0, "skipped_olid_ethos": 0}
    for line in (data / DAVIDSON).read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            texts.append(row["text"])
            labels.append(bool(row["toxic"]))
            counts["davidson"] += 1
    for line in (data / DEV).read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        if not str(row["meta"]["source"]).startswith(TOXIGEN_SOURCE_PREFIX):
            counts["skipped_olid_ethos"] += 1
            continue
        texts.append(row["text"])
        labels.append(bool(row["toxic"]))
        counts["toxigen"] += 1
    return texts, labels, counts


def train(data: Path) -> HeadWeights:
    texts, labels, counts = training_rows(data)
    encoder = shared_encoder()
    vectors = np.vstack([encoder.encode(texts[i:i + BATCH]) for i in range(0, len(texts), BATCH)])
    model = LogisticRegression(C=REGULARISATION_C, class_weight="balanced", max_iter=5000)
    model.fit(vectors, np.array(labels))
    metadata = {
        "model": "logistic regression on all-MiniLM-L6-v2 int8 mean-pooled, L2-normalised embeddings",
        "trained_on": {
            DAVIDSON: {"rows": counts["davidson"], "sha256": _sha256(data / DAVIDSON),
                       "source": "t-davidson/hate-speech-and-offensive-language", "licence": "MIT"},
            DEV: {"rows": counts["toxigen"], "sha256": _sha256(data / DEV), "only": "microsoft/TOXIGEN rows",
                  "source": "microsoft/TOXIGEN prompts", "licence": "MIT"},
        },
        "not_trained_on": "OLID and ETHOS rows of toxicity_dev.jsonl (measurement only)",
        "positives": int(sum(labels)), "rows": len(labels),
        "C": REGULARISATION_C, "class_weight": "balanced", "scikit_learn": sklearn.__version__,
    }
    print(f"trained on {counts['davidson']} Davidson rows ({DAVIDSON}, MIT) and {counts['toxigen']} ToxiGen rows "
          f"of {DEV} (MIT); skipped {counts['skipped_olid_ethos']} OLID/ETHOS rows (measure only)")
    return HeadWeights(np.asarray(model.coef_[0], dtype=np.float64), float(model.intercept_[0]), metadata)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--out", type=Path, default=HEAD_PATH)
    args = parser.parse_args(argv)
    if not (args.data / DAVIDSON).is_file() or not (args.data / DEV).is_file():
        print(f"training data not found in {args.data}", file=sys.stderr)
        return 2
    weights = train(args.data)
    weights.save(args.out)
    print(f"wrote {args.out}: {weights.coefficients.shape[0]} coefficients, intercept {weights.intercept:.4f}")
    print(json.dumps(weights.metadata, indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
