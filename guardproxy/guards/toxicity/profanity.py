"""The default signal: alt-profanity-check's linear model, scored without scikit-learn.

The model knows swearing and slurs well and implicit hate poorly; the implicit head
(``head.py``) covers the latter. The wheel pickles its model for scikit-learn, and running it
there costs a worker ~70 MB of resident memory (scikit-learn and SciPy) and ~2.7 ms of input
validation per call. ``data/profanity.npz`` holds the same numbers (``training/profanity_export.py``
writes it from the installed wheel), and ``ProfanityModel.probability`` does scikit-learn's
arithmetic in scikit-learn's order: lower-case, ``token_pattern``, English stop words dropped,
counts times IDF in column order, L2-normalised, then per calibrated SVM
``1 / (1 + exp(a * (x . w + c) + b))``, averaged. The scores equal the wheel's own
``predict_prob`` to the last bit or two (``tests/test_toxicity_profanity.py``).
"""

from __future__ import annotations

import json
import math
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

MODEL_PATH = Path(__file__).parent / "data" / "profanity.npz"
Scores = npt.NDArray[np.float64]


@dataclass(frozen=True)
class ProfanityModel:
    words: list[str]  # the vocabulary, in column order
    idf: npt.NDArray[np.float64]  # (words,)
    stop_words: frozenset[str]
    token_pattern: str
    coefficients: npt.NDArray[np.float64]  # (words, calibrated SVMs)
    intercepts: npt.NDArray[np.float64]  # (calibrated SVMs,)
    sigmoid_a: npt.NDArray[np.float64]
    sigmoid_b: npt.NDArray[np.float64]
    source: str
    _columns: dict[str, int] = field(init=False, repr=False, compare=False)
    _tokens: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_columns", {word: column for column, word in enumerate(self.words)})
        object.__setattr__(self, "_tokens", re.compile(self.token_pattern))

    @classmethod
    def load(cls, path: Path = MODEL_PATH) -> ProfanityModel:
        with np.load(path, allow_pickle=False) as archive:
            metadata = json.loads(str(archive["metadata"]))
            return cls(words=[str(w) for w in archive["words"]], idf=archive["idf"],
                       stop_words=frozenset(str(w) for w in archive["stop_words"]),
                       token_pattern=metadata["token_pattern"], coefficients=archive["coefficients"],
                       intercepts=archive["intercepts"], sigmoid_a=archive["sigmoid_a"],
                       sigmoid_b=archive["sigmoid_b"], source=metadata["source"])

    def save(self, path: Path) -> None:
        metadata = {"token_pattern": self.token_pattern, "source": self.source}
        np.savez_compressed(path, words=np.array(self.words), idf=self.idf,
                            stop_words=np.array(sorted(self.stop_words)), coefficients=self.coefficients,
                            intercepts=self.intercepts, sigmoid_a=self.sigmoid_a, sigmoid_b=self.sigmoid_b,
                            metadata=np.str_(json.dumps(metadata, sort_keys=True)))

    def probability(self, text: str) -> float:
        """The probability that ``text`` is profane or offensive."""
        counts: dict[int, int] = {}
        for token in self._tokens.findall(text.lower()):
            column = None if token in self.stop_words else self._columns.get(token)
            if column is not None:
                counts[column] = counts.get(column, 0) + 1
        columns = sorted(counts)
        values = [counts[column] * float(self.idf[column]) for column in columns]
        norm = 0.0
        for value in values:
            norm += value * value
        if norm != 0.0:
            norm = math.sqrt(norm)
            values = [value / norm for value in values]
        decisions = np.zeros(len(self.intercepts))
        for value, weights in zip(values, self.coefficients[columns], strict=True):
            decisions += value * weights
        decisions += self.intercepts
        total = 0.0
        for logit in (self.sigmoid_a * decisions + self.sigmoid_b).tolist():
            total += 1.0 / (1.0 + math.exp(logit))
        return total / len(self.intercepts)


class ProfanityScorer:
    """Loads the model on first use (``warm()`` does it before the first request)."""

    def __init__(self) -> None:
        self._model: ProfanityModel | None = None
        self._lock = threading.Lock()

    def load(self) -> None:
        with self._lock:
            if self._model is None:
                self._model = ProfanityModel.load()

    def score(self, texts: Sequence[str]) -> Scores:
        """The probability that each text is profane or offensive."""
        if not texts:
            return np.zeros(0, dtype=np.float64)
        if self._model is None:
            self.load()
        assert self._model is not None
        return np.array([self._model.probability(text) for text in texts], dtype=np.float64)
