"""Running Presidio over a request's segments: cached and thread-safe.

Chat clients resend the whole history every turn, so most segments of a request
were analysed before. Results are cached in a bounded LRU keyed on a hash of
the text (the guard instance fixes the settings), holding offsets, types and
scores, never text. The rest are analysed one by one: the spaCy work of each
runs as its recognizers read it (``nlp.PiiNlpEngine``), which locks spaCy itself.
A text longer than ``sentences.PIECE_CHARS`` is analysed in pieces cut at
sentence ends: spaCy refuses a text past its ``max_length`` (error E088).
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass

from presidio_analyzer import AnalyzerEngine, RecognizerResult

from guardproxy.guards.abandonment import raise_if_abandoned
from guardproxy.guards.sentences import PIECE_CHARS, text_pieces
from guardproxy.guards.spacy_docs import transient_strings


@dataclass(frozen=True, slots=True)
class Detection:
    entity: str
    start: int
    end: int
    score: float


class DetectionCache:
    """A bounded LRU of text digest -> detections. Thread-safe."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: OrderedDict[bytes, tuple[Detection, ...]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    @staticmethod
    def key(text: str) -> bytes:
        return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()

    def get(self, key: bytes) -> tuple[Detection, ...] | None:
        with self._lock:
            found = self._items.get(key)
            if found is None:
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return found

    def put(self, key: bytes, detections: tuple[Detection, ...]) -> None:
        if self._size == 0:
            return
        with self._lock:
            self._items[key] = detections
            self._items.move_to_end(key)
            while len(self._items) > self._size:
                self._items.popitem(last=False)


def analyze_batch(
    analyzer: AnalyzerEngine, texts: Sequence[str], language: str, entities: Sequence[str], threshold: float
) -> list[tuple[Detection, ...]]:
    """One tuple of detections per text, with offsets in that text."""
    pieces = [(index, start, text[start:end]) for index, text in enumerate(texts)
              for start, end in text_pieces(text, PIECE_CHARS)]
    found: list[list[Detection]] = [[] for _ in texts]
    with _zone(analyzer, language):
        analysed = analyzer.nlp_engine.process_batch([piece for _, _, piece in pieces], language)
        for (index, offset, _), (piece, nlp_artifacts) in zip(pieces, analysed, strict=True):
            raise_if_abandoned()
            results: list[RecognizerResult] = analyzer.analyze(
                text=str(piece), language=language, entities=list(entities), score_threshold=threshold,
                nlp_artifacts=nlp_artifacts,
            )
            found[index].extend(Detection(r.entity_type, r.start + offset, r.end + offset, float(r.score))
                                for r in results)
    return [tuple(detections) for detections in found]


def _zone(analyzer: AnalyzerEngine, language: str) -> AbstractContextManager[None]:
    """A spaCy memory zone around the analysis when the engine runs a spaCy pipeline (not ``nlp: pattern``)."""
    pipelines = getattr(analyzer.nlp_engine, "nlp", None)
    nlp = pipelines.get(language) if isinstance(pipelines, dict) else None
    return transient_strings(nlp) if nlp is not None else nullcontext()


def resolve_overlaps(detections: Sequence[Detection]) -> list[Detection]:
    """Merge overlapping detections into their union, so a redaction covers
    everything any recognizer found (a city inside a street address must not
    shrink the address to the city). The merged span takes the entity of its
    highest-scoring member, the longest on a tie."""
    merged: list[list[Detection]] = []
    for detection in sorted(detections, key=lambda d: (d.start, -d.end)):
        if merged and detection.start < max(d.end for d in merged[-1]):
            merged[-1].append(detection)
        else:
            merged.append([detection])
    out = []
    for group in merged:
        best = max(group, key=lambda d: (d.score, d.end - d.start))
        out.append(Detection(best.entity, min(d.start for d in group), max(d.end for d in group), best.score))
    return out
