"""Export alt-profanity-check's model to ``guardproxy/guards/toxicity/data/profanity.npz``, which
``guardproxy/guards/toxicity/profanity.py`` scores with.

    python training/profanity_export.py [--out PATH]

The wheel pickles a scikit-learn TF-IDF vectorizer and a sigmoid-calibrated linear SVM
ensemble. This reads them (with scikit-learn, which only this offline step needs), checks that
they are the kind ``ProfanityScorer`` reproduces, and writes their numbers: the vocabulary, the
IDF weights, the stop words, and per calibrated SVM its coefficients, intercept and sigmoid.
Deterministic: the same wheel gives the same file, and ``tests/test_toxicity_profanity.py``
fails when the installed wheel no longer matches it.
"""

from __future__ import annotations

import argparse
import importlib.metadata
from pathlib import Path
from typing import Any

import numpy as np

from guardproxy.guards.toxicity.profanity import MODEL_PATH, ProfanityModel

PACKAGE = "alt-profanity-check"


def _check(vectorizer: Any, model: Any) -> None:
    """The settings ``ProfanityScorer`` implements; anything else must not be exported silently."""
    expected = {"analyzer": "word", "binary": False, "lowercase": True, "ngram_range": (1, 1), "norm": "l2",
                "preprocessor": None, "smooth_idf": True, "stop_words": "english", "strip_accents": None,
                "sublinear_tf": False, "tokenizer": None, "use_idf": True, "vocabulary": None}
    params = vectorizer.get_params()
    wrong = {key: params[key] for key, value in expected.items() if params[key] != value}
    if wrong:
        raise ValueError(f"{PACKAGE}'s vectorizer has settings the scorer does not implement: {wrong}")
    if model.method != "sigmoid" or list(model.classes_) != [0, 1]:
        raise ValueError(f"{PACKAGE}'s model is not a binary sigmoid-calibrated classifier")
    for calibrated in model.calibrated_classifiers_:
        if calibrated.estimator.coef_.shape != (1, len(vectorizer.vocabulary_)) or len(calibrated.calibrators) != 1:
            raise ValueError(f"{PACKAGE}'s calibrated classifiers are not one linear model each")


def from_wheel() -> ProfanityModel:
    """The installed wheel's model, as plain arrays."""
    from profanity_check import profanity_check  # loads the pickles with scikit-learn

    vectorizer, model = profanity_check.vectorizer, profanity_check.model
    _check(vectorizer, model)
    vocabulary: dict[str, int] = vectorizer.vocabulary_
    calibrated = model.calibrated_classifiers_
    return ProfanityModel(
        words=sorted(vocabulary, key=vocabulary.__getitem__),
        idf=np.asarray(vectorizer.idf_, dtype=np.float64),
        stop_words=frozenset(vectorizer.get_stop_words()),
        token_pattern=str(vectorizer.token_pattern),
        coefficients=np.stack([np.asarray(c.estimator.coef_[0], dtype=np.float64) for c in calibrated], axis=1),
        intercepts=np.array([float(c.estimator.intercept_[0]) for c in calibrated]),
        sigmoid_a=np.array([float(c.calibrators[0].a_) for c in calibrated]),
        sigmoid_b=np.array([float(c.calibrators[0].b_) for c in calibrated]),
        source=f"{PACKAGE} {importlib.metadata.version(PACKAGE)}",
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=MODEL_PATH)
    args = parser.parse_args(argv)
    model = from_wheel()
    model.save(args.out)
    print(f"wrote {args.out}: {len(model.words)} words, {model.coefficients.shape[1]} calibrated SVMs, "
          f"from {model.source}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
