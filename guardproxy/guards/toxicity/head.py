"""The implicit-hate signal: a logistic-regression head on MiniLM sentence embeddings.

Hate without swear words ("they should all go back where they came from")
gets a low profanity score; the embedding carries the meaning. The head's
weights ship in ``data/head.npz`` and are made by ``training/toxicity_head.py`` from
permissively licensed data only (see ``data/NOTICE``).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from guardproxy.embeddings import DIMENSIONS, CachedEncoder, shared_encoder

HEAD_PATH = Path(__file__).parent / "data" / "head.npz"
Scores = npt.NDArray[np.float64]


@dataclass(frozen=True)
class HeadWeights:
    coefficients: npt.NDArray[np.float64]
    intercept: float
    metadata: dict[str, Any]

    @classmethod
    def load(cls, path: Path = HEAD_PATH) -> HeadWeights:
        with np.load(path, allow_pickle=False) as archive:
            coefficients = np.asarray(archive["coefficients"], dtype=np.float64)
            intercept = float(archive["intercept"])
            metadata = json.loads(str(archive["metadata"]))
        if coefficients.shape != (DIMENSIONS,):
            raise ValueError(f"{path}: expected {DIMENSIONS} coefficients, found shape {coefficients.shape}")
        return cls(coefficients, intercept, metadata)

    def save(self, path: Path) -> None:
        np.savez(path, coefficients=self.coefficients, intercept=np.float64(self.intercept),
                 metadata=np.str_(json.dumps(self.metadata, sort_keys=True)))

    def probabilities(self, vectors: npt.NDArray[np.float32]) -> Scores:
        logits = vectors.astype(np.float64) @ self.coefficients + self.intercept
        result: Scores = 1.0 / (1.0 + np.exp(-logits))
        return result


class ImplicitHead:
    """Encodes with the process's shared MiniLM encoder, behind an LRU of vectors."""

    def __init__(self, cache_size: int) -> None:
        self._cache_size = cache_size
        self._state: tuple[HeadWeights, CachedEncoder] | None = None
        self._lock = threading.Lock()

    def load(self) -> None:
        with self._lock:
            if self._state is None:
                self._state = (HeadWeights.load(), CachedEncoder(shared_encoder(), self._cache_size))

    def score(self, texts: Sequence[str]) -> Scores:
        if not texts:
            return np.zeros(0, dtype=np.float64)
        if self._state is None:
            self.load()
        assert self._state is not None
        weights, encoder = self._state
        return weights.probabilities(encoder.encode(texts))
