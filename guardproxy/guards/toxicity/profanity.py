"""The default signal: alt-profanity-check's linear model (shipped in its wheel).

It knows swearing and slurs well and implicit hate poorly; the implicit head
(``head.py``) covers the latter. All texts of a request go through one call.

The model is scikit-learn's ``CalibratedClassifierCV`` over five ``LinearSVC``
folds with sigmoid calibration. ``predict_proba`` spends about 2.5 ms per call
in scikit-learn's validation and per-fold dispatch, where the arithmetic takes
microseconds, so the scorer reads the folds' weights once and computes the same
probabilities itself: the mean over folds of ``1 / (1 + exp(a * (x.w + c) + b))``.
It agrees with ``predict_proba`` to 1e-12 (tests/test_toxicity_guard.py checks it).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

Scores = npt.NDArray[np.float64]


@dataclass(frozen=True)
class _CalibratedLinear:
    vectorizer: Any  # the wheel's fitted scikit-learn vectorizer
    weights: npt.NDArray[np.float64]  # (features, folds)
    intercepts: npt.NDArray[np.float64]  # (folds,)
    slopes: npt.NDArray[np.float64]  # sigmoid calibration a, per fold
    offsets: npt.NDArray[np.float64]  # sigmoid calibration b, per fold

    @classmethod
    def from_wheel(cls) -> _CalibratedLinear:
        from profanity_check import profanity_check as shipped  # loads the pickled model: not at import time

        folds = shipped.model.calibrated_classifiers_
        if shipped.model.method != "sigmoid" or any(len(f.calibrators) != 1 for f in folds):
            raise RuntimeError("alt-profanity-check's model is not the binary sigmoid-calibrated one expected")
        return cls(
            vectorizer=shipped.vectorizer,
            weights=np.stack([f.estimator.coef_[0] for f in folds], axis=1).astype(np.float64),
            intercepts=np.array([f.estimator.intercept_[0] for f in folds], dtype=np.float64),
            slopes=np.array([f.calibrators[0].a_ for f in folds], dtype=np.float64),
            offsets=np.array([f.calibrators[0].b_ for f in folds], dtype=np.float64),
        )

    def probabilities(self, texts: list[str]) -> Scores:
        decision = self.vectorizer.transform(texts) @ self.weights + self.intercepts
        folds = 1.0 / (1.0 + np.exp(self.slopes * decision + self.offsets))
        return np.asarray(folds.mean(axis=1), dtype=np.float64)


class ProfanityScorer:
    """Loads the model on first use (``warm()`` does it before the first request)."""

    def __init__(self) -> None:
        self._model: _CalibratedLinear | None = None
        self._lock = threading.Lock()

    def load(self) -> None:
        with self._lock:
            if self._model is None:
                self._model = _CalibratedLinear.from_wheel()

    def score(self, texts: Sequence[str]) -> Scores:
        """The probability that each text is profane or offensive, in one batch."""
        if not texts:
            return np.zeros(0, dtype=np.float64)
        if self._model is None:
            self.load()
        assert self._model is not None
        return self._model.probabilities(list(texts))
