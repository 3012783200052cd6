"""The topics guard: a finding per segment (or sentence window, or keyword) about a banned topic.

Every finding's label is the topic's name and its score is the method's:
for ``semantic``, the best cosine less the topic's traffic shift
(``calibration.py``; none with ``calibration: none``), plus ``keyword_boost``
when a keyword of the topic is in the scored text, capped at 1; 1.0 for a
keyword or a judge's yes. A finding fires when its score reaches ``threshold``.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections import OrderedDict
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from guardproxy.guards.api import (
    CachedEncoder,
    Finding,
    GuardConfig,
    GuardContext,
    GuardKind,
    Segment,
    UpstreamClient,
    Vectors,
    shared_encoder,
)
from guardproxy.guards.pii.analyzer import shared_nlp_engine
from guardproxy.guards.topics.calibration import TrafficCalibration, background_vectors
from guardproxy.guards.topics.config import TopicsConfig
from guardproxy.guards.topics.judge import judge_request, parse_judgement
from guardproxy.guards.topics.lemmas import KeywordHit, LemmaMatcher
from guardproxy.guards.topics.semantic import Scores, TopicIndex, compose
from guardproxy.guards.topics.windows import sentence_units, window_runs

log = logging.getLogger("guardproxy.guards.topics")


class NoUpstreamError(RuntimeError):
    """``method: llm`` ran where no upstream is reachable (e.g. ``guardproxy eval``)."""


@dataclass(frozen=True, slots=True)
class _Unit:
    """A scored piece of a segment: the whole text (``start`` None) or a sentence window. ``segment`` is
    the segment's position among those scored together."""

    segment: int
    start: int | None
    end: int | None

    def covers(self, hit: KeywordHit) -> bool:
        return self.start is None or (self.start <= hit.start and hit.end <= (self.end or 0))


@dataclass(frozen=True, slots=True)
class _Scored:
    """One segment scored: its units (the whole text first), their (units, topics) cosines, its keyword hits."""

    units: tuple[_Unit, ...]
    scores: Scores
    hits: tuple[KeywordHit, ...]


class TopicsGuard:
    Config: ClassVar[type[GuardConfig]] = TopicsConfig

    @property
    def cacheable(self) -> bool:
        """Not with the judge (it is the upstream), nor with traffic calibration (scores follow the traffic)."""
        return self.config.method == "keywords" or (self.config.method == "semantic"
                                                    and self.config.calibration == "none")

    @property
    def kind(self) -> GuardKind:
        """Embeddings and lemmas run in the guard pool; ``method: llm`` waits on the judge."""
        return "io" if self.config.method == "llm" else "cpu"

    def __init__(self, config: TopicsConfig) -> None:
        self.config = config
        self._names = [topic.name for topic in config.topics]
        self._index: TopicIndex | None = None
        if config.method == "semantic":
            self._index = TopicIndex(config.topics, CachedEncoder(shared_encoder(), config.cache_size))
        self._matcher: LemmaMatcher | None = None
        self._calibration: TrafficCalibration | None = None
        self._calibration_lock = threading.Lock()
        self._results: OrderedDict[bytes, _Scored] = OrderedDict()  # see _segment_results
        self._results_lock = threading.Lock()

    def _needs_keywords(self) -> bool:
        has_keywords = any(topic.keywords for topic in self.config.topics)
        if self.config.method == "semantic":
            return has_keywords and self.config.keyword_boost > 0
        return self.config.method == "keywords"

    def _keyword_matcher(self) -> LemmaMatcher | None:
        if self._matcher is None and self._needs_keywords():
            nlp = shared_nlp_engine("ner", self.config.language).nlp[self.config.language]  # type: ignore[attr-defined]
            pairs = [(topic.name, keyword) for topic in self.config.topics for keyword in topic.keywords]
            self._matcher = LemmaMatcher(nlp, pairs)
        return self._matcher

    def warm(self) -> None:
        """Load the models and embed the topics' references, so the first request pays nothing."""
        matcher = self._keyword_matcher()
        if matcher is not None:
            matcher.find(["warm up"])
        if self._index is not None:
            self._index.scores(["warm up"])
            self._traffic_calibration()

    def _traffic_calibration(self) -> TrafficCalibration | None:
        """The topics' calibration, seeded with the background's scores on first use (``warm()`` at load)."""
        if self.config.calibration == "none" or self._index is None:
            return None
        with self._calibration_lock:
            if self._calibration is None:
                self._calibration = TrafficCalibration(self._index.vector_scores(background_vectors()),
                                                       self.config.calibration_window,
                                                       self.config.calibration_max_shift)
            return self._calibration

    def scan(self, segments: Sequence[Segment], context: GuardContext) -> list[Finding] | Awaitable[list[Finding]]:
        """Findings, or (``method: llm``) an awaitable of the judge's."""
        scanned = [i for i, s in enumerate(segments) if s.text.strip()
                   and (self.config.roles is None or s.role in self.config.roles)]
        if not scanned:
            return []
        texts = [segments[i].text for i in scanned]
        if self.config.method == "keywords":
            return self._scan_keywords(scanned, texts)
        if self.config.method == "llm":
            if context.upstream is None:
                raise NoUpstreamError("method: llm needs the upstream to reach the judge model; none is available here")
            return self._scan_judge(scanned, texts, context.upstream)
        return self._scan_semantic(scanned, texts)

    def _scan_keywords(self, scanned: list[int], texts: list[str]) -> list[Finding]:
        matcher = self._keyword_matcher()
        assert matcher is not None  # the config requires keywords for this method
        return [Finding(hit.topic, 1.0, index, hit.start, hit.end)
                for index, hits in zip(scanned, matcher.find(texts), strict=True) for hit in hits]

    def _scan_semantic(self, scanned: list[int], texts: list[str]) -> list[Finding]:
        results, fresh = self._segment_results(texts)
        shifts = np.zeros(len(self._names), dtype=np.float32)
        calibration = self._traffic_calibration()
        if calibration is not None:
            shifts = calibration.shifts()  # before this request's texts join the sample
            if fresh:
                calibration.observe(np.stack([results[i].scores[0] for i in fresh]))
        return [finding for index, result in zip(scanned, results, strict=True)
                for finding in self._findings(index, result, shifts)]

    def _findings(self, index: int, result: _Scored, shifts: Scores) -> list[Finding]:
        """A segment's best unit per topic, when its score (less the shift, plus any keyword boost) fires."""
        best: dict[int, tuple[float, _Unit]] = {}
        for unit, row in zip(result.units, result.scores - shifts, strict=True):
            for column, name in enumerate(self._names):
                score = float(row[column])
                if any(h.topic == name and unit.covers(h) for h in result.hits):
                    score = min(1.0, score + self.config.keyword_boost)
                if column not in best or score > best[column][0]:
                    best[column] = (score, unit)
        return [Finding(self._names[column], round(score, 4), index, unit.start, unit.end)
                for column, (score, unit) in sorted(best.items()) if score >= self.config.threshold]

    def _segment_results(self, texts: list[str]) -> tuple[list[_Scored], list[int]]:
        """Each text's units, cosines and keyword hits, remembered per text (a resent chat history is
        scored once), and the positions of the texts this guard had not scored before."""
        keys = [hashlib.blake2b(t.encode("utf-8", "surrogatepass"), digest_size=16).digest() for t in texts]
        with self._results_lock:
            known = {key: self._results[key] for key in keys if key in self._results}
            for key in known:
                self._results.move_to_end(key)
        first = {key: i for i, key in reversed(list(enumerate(keys)))}  # each distinct text's first position
        fresh = sorted(i for key, i in first.items() if key not in known)
        if fresh:
            new_texts = [texts[i] for i in fresh]
            units, scores = self._unit_scores(list(range(len(fresh))), new_texts)
            matcher = self._keyword_matcher()
            hits = matcher.find(new_texts) if matcher else [[] for _ in fresh]
            rows: dict[int, list[int]] = {}
            for row, unit in enumerate(units):
                rows.setdefault(unit.segment, []).append(row)
            with self._results_lock:
                for position, i in enumerate(fresh):
                    own = rows[position]
                    known[keys[i]] = _Scored(tuple(units[r] for r in own), scores[own], tuple(hits[position]))
                    if self.config.cache_size:
                        self._results[keys[i]] = known[keys[i]]
                while len(self._results) > self.config.cache_size:
                    self._results.popitem(last=False)
        return [known[key] for key in keys], fresh

    def _unit_scores(self, scanned: list[int], texts: list[str]) -> tuple[list[_Unit], Scores]:
        """Each segment's units (the whole text, then its sentence windows) and their (units, topics) scores."""
        assert self._index is not None
        units: list[_Unit] = []
        plans: list[tuple[str, list[tuple[int, int]], list[tuple[int, int]]]] = []  # text, sentences, runs
        for index, text in zip(scanned, texts, strict=True):
            sentences = sentence_units(text) if self.config.window_sentences else []
            runs = window_runs(len(sentences), self.config.window_sentences)
            units.append(_Unit(index, None, None))
            units.extend(_Unit(index, sentences[first][0], sentences[last][1]) for first, last in runs)
            plans.append((text, sentences if runs else [], runs))
        if self.config.window_embedding == "encoded":
            by_segment = dict(zip(scanned, texts, strict=True))
            return units, self._index.scores([by_segment[u.segment] if u.start is None
                                              else by_segment[u.segment][u.start:u.end] for u in units])
        return units, self._index.vector_scores(self._composed_vectors(plans))

    def _composed_vectors(self, plans: Sequence[tuple[str, list[tuple[int, int]], list[tuple[int, int]]]]) -> Vectors:
        """The units' vectors: a one-sentence text embedded whole; a longer one's sentences embedded and its
        whole text and windows composed from them (``semantic.compose``)."""
        assert self._index is not None
        pieces = [text[start:end] for text, sentences, _ in plans for start, end in (sentences or [(0, len(text))])]
        vectors = self._index.embed(pieces)
        rows: list[Vectors] = []
        first = 0
        for _, sentences, runs in plans:
            if not sentences:
                rows.append(vectors[first:first + 1])
                first += 1
                continue
            own = vectors[first:first + len(sentences)]
            first += len(sentences)
            rows.append(compose(own, [end - start for start, end in sentences], [(0, len(sentences) - 1), *runs]))
        return np.concatenate(rows)

    async def _scan_judge(self, scanned: list[int], texts: list[str], upstream: UpstreamClient) -> list[Finding]:
        assert self.config.judge_model is not None  # the config requires it for this method
        body = judge_request(self.config.judge_model, self.config.topics, texts)
        response = await upstream.post_json("/chat/completions", body, self.config.judge_timeout_ms / 1000)
        verdicts = parse_judgement(response, self._names, len(texts))
        return [Finding(name, 1.0, index) for index, names in zip(scanned, verdicts, strict=True)
                for name in self._names if name in names]
