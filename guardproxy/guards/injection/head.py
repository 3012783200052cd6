"""The injection head: two logistic regressions over MiniLM window embeddings and structural signals.

A text is cut into sentence windows (the toxicity guard's windows, so both guards embed the same
strings). The *direct* model reads a whole user message: the mean of its window embeddings and
the signals of the whole text. The *indirect* model reads one window of a tool result or document
at a time: that window's embedding and signals; a document scores as its highest window, so one
planted sentence in a long page is not averaged away.

The weights ship in ``data/head.npz``, made by ``training/injection_head.py`` from permissively
licensed data only (see ``data/NOTICE``).
"""

from __future__ import annotations

import functools
import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from guardproxy.embeddings import DIMENSIONS, CachedEncoder, Vectors, normalise_rows, shared_encoder
from guardproxy.guards.injection.signals import NAMES, Signals, signal_matrix

HEAD_PATH = Path(__file__).parent / "data" / "head.npz"
Scores = npt.NDArray[np.float64]
FEATURES = DIMENSIONS + len(NAMES)


def direct_features(window_vectors: Sequence[Vectors], signals: Signals) -> npt.NDArray[np.float64]:
    """One row per text: its windows' mean embedding (renormalised) and the text's signals."""
    if not window_vectors:
        return np.zeros((0, FEATURES), dtype=np.float64)
    means = normalise_rows(np.vstack([v.mean(axis=0, keepdims=True) for v in window_vectors]))
    return np.hstack([means.astype(np.float64), signals])


def window_features(vectors: Vectors, signals: Signals) -> npt.NDArray[np.float64]:
    """One row per window: its embedding and its own signals."""
    return np.hstack([vectors.astype(np.float64), signals])


@dataclass(frozen=True)
class Model:
    coefficients: npt.NDArray[np.float64]
    intercept: float

    def probabilities(self, features: npt.NDArray[np.float64]) -> Scores:
        logits = features @ self.coefficients + self.intercept
        result: Scores = 1.0 / (1.0 + np.exp(-logits))
        return result


@dataclass(frozen=True)
class HeadWeights:
    direct: Model
    indirect: Model
    metadata: dict[str, Any]

    @classmethod
    def load(cls, path: Path = HEAD_PATH) -> HeadWeights:
        with np.load(path, allow_pickle=False) as archive:
            models = [Model(np.asarray(archive[f"{name}_coefficients"], dtype=np.float64),
                            float(archive[f"{name}_intercept"])) for name in ("direct", "indirect")]
            metadata = json.loads(str(archive["metadata"]))
        for model in models:
            if model.coefficients.shape != (FEATURES,):
                raise ValueError(f"{path}: expected {FEATURES} coefficients, found {model.coefficients.shape}")
        if tuple(metadata.get("signals", ())) != NAMES:
            raise ValueError(f"{path}: fitted on signals {metadata.get('signals')}, the code has {list(NAMES)}")
        return cls(models[0], models[1], metadata)

    def save(self, path: Path) -> None:
        np.savez(path, direct_coefficients=self.direct.coefficients,
                 direct_intercept=np.float64(self.direct.intercept),
                 indirect_coefficients=self.indirect.coefficients,
                 indirect_intercept=np.float64(self.indirect.intercept),
                 metadata=np.str_(json.dumps(self.metadata, sort_keys=True)))


class SharedEncodes:
    """A vector cache that computes a list of windows once when several scans ask for the same list at
    the same time: a policy's block and flag entries scan the same segments in parallel pool threads,
    and with a plain cache both would miss and both would run the encoder."""

    def __init__(self, encoder: CachedEncoder) -> None:
        self._encoder = encoder
        self._lock = threading.Lock()
        self._running: dict[tuple[str, ...], threading.Event] = {}

    def encode(self, texts: Sequence[str]) -> Vectors:
        key = tuple(texts)
        with self._lock:
            running = self._running.get(key)
            if running is None:
                self._running[key] = threading.Event()
        if running is not None:
            running.wait()
            return self._encoder.encode(texts)  # from the cache, unless it is off or the first scan failed
        try:
            return self._encoder.encode(texts)
        finally:
            with self._lock:
                self._running.pop(key).set()


@functools.cache
def _shared_cache(size: int) -> SharedEncodes:
    """One vector cache per size for every injection guard of the process, so that a policy's block
    and flag entries (same texts, different thresholds) embed each window once."""
    return SharedEncodes(CachedEncoder(shared_encoder(), size))


class InjectionHead:
    """Loads the weights and the encoder on first use; thread-safe."""

    def __init__(self, cache_size: int) -> None:
        self._cache_size = cache_size
        self._state: tuple[HeadWeights, SharedEncodes] | None = None
        self._lock = threading.Lock()

    def _loaded(self) -> tuple[HeadWeights, SharedEncodes]:
        with self._lock:
            if self._state is None:
                self._state = (HeadWeights.load(), _shared_cache(self._cache_size))
            return self._state

    def direct(self, windows: Sequence[Sequence[str]], signals: Signals) -> Scores:
        """The direct score of each text, given its windows' strings (at least one) and its signals."""
        if not windows:
            return np.zeros(0, dtype=np.float64)
        weights, encoder = self._loaded()
        vectors = encoder.encode([w for group in windows for w in group])
        bounds = np.cumsum([0, *(len(group) for group in windows)])
        groups = [vectors[bounds[i]:bounds[i + 1]] for i in range(len(windows))]
        return weights.direct.probabilities(direct_features(groups, signals))

    def indirect(self, windows: Sequence[str]) -> Scores:
        """The indirect score of each window."""
        if not windows:
            return np.zeros(0, dtype=np.float64)
        weights, encoder = self._loaded()
        return weights.indirect.probabilities(window_features(encoder.encode(windows), signal_matrix(windows)))
