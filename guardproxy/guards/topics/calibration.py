"""Traffic calibration: a topic's score read against the traffic the guard sees, not as a bare cosine.

A fixed cosine threshold means different things in different places. Among
everyday requests on many subjects, an off-topic text is far from a banned
topic (cosine ~0.2) and an on-topic one is ~0.45; where every request is about
one field (a bank's assistant banning one banking sub-topic), the *allowed*
texts already sit near the topic (~0.4-0.5), so the same threshold fires on
most of them. What carries over is how far a text stands out from the ordinary
text around it.

``TrafficCalibration`` keeps, per topic, the whole-text scores of the last
``window`` segments the guard scanned, seeded with the scores of a generic
background text that ships with the package (``data/background.txt``), embedded
when the policy loads. A topic's *shift* is how far the median of that sample
has risen above the background's median, between 0 and ``max_shift``; the
calibrated score is the cosine minus the shift. Before any traffic, or on
traffic as mixed as the background, the shift is 0 and the score is the cosine.

The shift is taken before a request's own texts join the sample, so a text never
lowers its own score. Traffic can still move it: a client that floods the guard
with texts close to a topic lowers that topic's scores by at most ``max_shift``.
A policy for which that matters sets ``calibration: none``.
"""

from __future__ import annotations

import functools
import threading
from collections import deque
from importlib import resources

import numpy as np
import numpy.typing as npt

from guardproxy.embeddings import Vectors, shared_encoder

Scores = npt.NDArray[np.float32]


@functools.cache
def background_texts() -> tuple[str, ...]:
    """The background text of the package, one text a line (``#`` lines are comments)."""
    text = resources.files("guardproxy.guards.topics").joinpath("data/background.txt").read_text(encoding="utf-8")
    return tuple(line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#"))


@functools.cache
def background_vectors() -> Vectors:
    """The background's sentence vectors, embedded once per process (the first guard that calibrates)."""
    return shared_encoder().encode(list(background_texts()))


class TrafficCalibration:
    """Per-topic samples of recent whole-text scores and the shift they give. Thread-safe."""

    def __init__(self, background_scores: Scores, window: int, max_shift: float) -> None:
        """``background_scores`` is a (background texts, topics) array of the topics' scores."""
        seed = background_scores[-window:]
        self._baseline = np.median(seed, axis=0)
        self._max_shift = max_shift
        self._samples = [deque(column, maxlen=window) for column in seed.T.tolist()]
        self._lock = threading.Lock()

    def shifts(self) -> Scores:
        """How much to take off each topic's scores now."""
        with self._lock:
            medians = np.array([np.median(sample) for sample in self._samples])
        shifts: Scores = np.clip(medians - self._baseline, 0.0, self._max_shift).astype(np.float32)
        return shifts

    def observe(self, scores: Scores) -> None:
        """Add a (segments, topics) array of whole-text scores to the samples."""
        with self._lock:
            for sample, column in zip(self._samples, scores.T.tolist(), strict=True):
                sample.extend(column)
