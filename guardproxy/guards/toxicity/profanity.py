"""The default signal: alt-profanity-check's linear model (shipped in its wheel).

It knows swearing and slurs well and implicit hate poorly; the implicit head
(``head.py``) covers the latter. All texts of a request go through one call.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

Scores = npt.NDArray[np.float64]


class ProfanityScorer:
    """Loads the model on first use (``warm()`` does it before the first request)."""

    def __init__(self) -> None:
        self._predict: Callable[[list[str]], Any] | None = None
        self._lock = threading.Lock()

    def load(self) -> None:
        with self._lock:
            if self._predict is None:
                from profanity_check import predict_prob  # loads the pickled model: not at import time

                self._predict = predict_prob

    def score(self, texts: Sequence[str]) -> Scores:
        """The probability that each text is profane or offensive, in one batch."""
        if not texts:
            return np.zeros(0, dtype=np.float64)
        if self._predict is None:
            self.load()
        assert self._predict is not None
        return np.asarray(self._predict(list(texts)), dtype=np.float64)
