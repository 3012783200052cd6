"""Topic scores from sentence embeddings: the best cosine between a text and a topic's references.

A topic's references are its description, each sub-area the description lists
(``"Travel: flights, hotels and visas"`` also gives "travel: flights",
"travel: hotels", "travel: visas"), its examples and its keywords. One long
description embeds as a blur of everything it lists; short queries sit much
closer to one listed sub-area than to the whole sentence, so the parts are
scored too. References are embedded once per guard; texts go through a
``CachedEncoder``, so a chat history resent every turn is embedded once.

A multi-sentence text is scored as its sentences, its sentence windows and its
whole. With ``window_embedding: composed`` (the default) only the sentences go
through the model: a window's vector, and the whole text's, is the
length-weighted mean of its sentences' vectors, re-normalised. The model's cost
grows with the token positions it runs, so this costs one pass over the text's
tokens instead of about four (the whole, each sentence, each pair), at the price
of approximating what the model would make of the joined sentences
(``benchmarks/topics_windows.py`` measures both).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from guardproxy.embeddings import CachedEncoder, Vectors, normalise_rows
from guardproxy.guards.topics.config import Topic

Scores = npt.NDArray[np.float32]

_LIST_SEPARATOR = re.compile(r"\s*(?:[,;]|\band\b|\bor\b)\s*")


def listed_parts(topic: Topic) -> list[str]:
    """The sub-areas a description lists after its colon (or in its whole text), as "<topic>: <part>"."""
    head, _, body = topic.description.partition(":")
    parts = [p.strip(" .") for p in _LIST_SEPARATOR.split(body or head) if p.strip(" .")]
    if len(parts) < 2:
        return []
    label = topic.name.replace("_", " ")
    return [f"{label}: {part}" for part in parts]


def reference_texts(topic: Topic) -> list[str]:
    label = topic.name.replace("_", " ")
    return [topic.description, *listed_parts(topic), *topic.examples, *(f"{label}: {k}" for k in topic.keywords)]


class TopicIndex:
    """Reference vectors of each topic, built on first use (``warm()`` builds them at policy load)."""

    def __init__(self, topics: Sequence[Topic], encoder: CachedEncoder) -> None:
        self._topics = list(topics)
        self._encoder = encoder
        self._references: list[Vectors] | None = None
        self._lock = threading.Lock()

    def _reference_vectors(self) -> list[Vectors]:
        with self._lock:
            if self._references is None:
                self._references = [self._encoder.encode(reference_texts(topic)) for topic in self._topics]
            return self._references

    def scores(self, texts: Sequence[str]) -> Scores:
        """A (texts, topics) array: each text's best cosine with each topic's references."""
        return self.vector_scores(self._encoder.encode(texts))

    def embed(self, texts: Sequence[str]) -> Vectors:
        return self._encoder.encode(texts)

    def vector_scores(self, vectors: Vectors) -> Scores:
        """A (vectors, topics) array: each normalised vector's best cosine with each topic's references."""
        references = self._reference_vectors()
        columns = [(vectors @ refs.T).max(axis=1) for refs in references]
        return np.stack(columns, axis=1).astype(np.float32)


def compose(vectors: Vectors, weights: Sequence[float], runs: Sequence[tuple[int, int]]) -> Vectors:
    """One normalised vector per (first, last) run of ``vectors``: their ``weights``-weighted mean."""
    weighted = vectors * np.asarray(weights, dtype=np.float32)[:, None]
    return normalise_rows(np.stack([weighted[first:last + 1].sum(axis=0) for first, last in runs]))
