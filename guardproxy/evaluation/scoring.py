"""Turning gold labels and what the chain did into precision, recall, F1 and latency.

A ratio whose denominator is zero is ``None`` (printed ``n/a``), never a crash
and never a made-up 0 or 1: a chain that flags nothing has no precision.
F1 is ``2tp / (2tp + fp + fn)``, which is 0 rather than undefined when there
was something to find and the chain found none of it.

When the rows name their source, every figure is also computed per source,
with the same rules as the whole: which predicted labels count and which gold
types are judged are decided once, on all rows, so a source where the guard
happened to emit no PERSON span still has its PERSON recall counted.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from guardproxy.evaluation.datasets import Dataset, LabelledItem, LabelledSpan, Schema
from guardproxy.evaluation.reviewed import ReviewScores, score_review
from guardproxy.evaluation.runner import Observation

# Type-aware PII matching: the gold labels a predicted label may match (any other label matches only itself).
# Presidio has one LOCATION type where annotated data splits places (GPE) from street addresses, and a street
# address recognizer's span often covers the town and postcode annotated as GPE next to it; both are the same
# kind of disclosure (where someone is), so they match each other. Nothing else is aliased: a PERSON found on
# an ORGANIZATION is wrong.
MATCHING_GOLD_LABELS: dict[str, frozenset[str]] = {
    "LOCATION": frozenset({"LOCATION", "GPE", "STREET_ADDRESS"}),
    "STREET_ADDRESS": frozenset({"STREET_ADDRESS", "GPE", "LOCATION"}),
}

# Grounding: the README warns that answer length alone leaks the label, so figures are also split by it.
LENGTH_BUCKETS: tuple[tuple[str, float], ...] = (("<=10 words", 10), ("11-30 words", 30), (">30 words", math.inf))

# The source of rows that name none, in data where other rows do.
NO_SOURCE = "(no source)"


def ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator else None


@dataclass(slots=True)
class Confusion:
    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0

    def count(self, gold: bool, predicted: bool) -> None:
        if gold and predicted:
            self.tp += 1
        elif gold:
            self.fn += 1
        elif predicted:
            self.fp += 1
        else:
            self.tn += 1

    @property
    def items(self) -> int:
        return self.tp + self.fp + self.fn + self.tn

    @property
    def precision(self) -> float | None:
        return ratio(self.tp, self.tp + self.fp)

    @property
    def recall(self) -> float | None:
        return ratio(self.tp, self.tp + self.fn)

    @property
    def f1(self) -> float | None:
        return ratio(2 * self.tp, 2 * self.tp + self.fp + self.fn)

    @property
    def accuracy(self) -> float | None:
        return ratio(self.tp + self.tn, self.items)

    @property
    def false_positive_rate(self) -> float | None:
        return ratio(self.fp, self.fp + self.tn)


@dataclass(slots=True)
class LabelRecall:
    gold: int = 0
    found: int = 0

    @property
    def recall(self) -> float | None:
        return ratio(self.found, self.gold)


@dataclass(slots=True)
class SpanScores:
    """Label-agnostic span matching: a predicted span is right if it overlaps any gold span.

    ``matched`` counts predicted spans that overlap a gold span (precision);
    ``found`` counts gold spans overlapped by at least one prediction (recall).
    ``filter_applied`` says whether ``--positive`` also narrowed the predictions
    (see ``prediction_labels``).
    """

    filter_applied: bool
    guard_labels: frozenset[str]
    predicted: int = 0
    matched: int = 0
    gold: int = 0
    found: int = 0
    per_label: dict[str, LabelRecall] = field(default_factory=dict)

    @property
    def precision(self) -> float | None:
        return ratio(self.matched, self.predicted)

    @property
    def recall(self) -> float | None:
        return ratio(self.found, self.gold)

    @property
    def f1(self) -> float | None:
        if not self.predicted and not self.gold:
            return None
        precision, recall = self.precision, self.recall
        if not precision or not recall:
            return 0.0
        return 2 * precision * recall / (precision + recall)


def gold_labels_matched_by(label: str) -> frozenset[str]:
    """The gold labels a prediction labelled ``label`` may match (see ``MATCHING_GOLD_LABELS``)."""
    return MATCHING_GOLD_LABELS.get(label, frozenset({label}))


def type_matches(predicted: LabelledSpan, gold: LabelledSpan) -> bool:
    """A prediction is right for a gold span if they overlap and its label may match the gold label."""
    return predicted.overlaps(gold) and gold.label in gold_labels_matched_by(predicted.label)


@dataclass(slots=True)
class EntityTally:
    """Type-aware counts for one label, or for all targeted labels together.

    Precision is over predictions with the label (``correct`` of ``predicted``),
    recall over gold spans with it (``found`` of ``gold``). A label that is only
    predicted (LOCATION) or only annotated (GPE) has one of the two, and no F1.
    """

    predicted: int = 0
    correct: int = 0
    gold: int = 0
    found: int = 0

    @property
    def precision(self) -> float | None:
        return ratio(self.correct, self.predicted)

    @property
    def recall(self) -> float | None:
        return ratio(self.found, self.gold)

    @property
    def f1(self) -> float | None:
        precision, recall = self.precision, self.recall
        if precision is None or recall is None:
            return None
        return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


@dataclass(slots=True)
class TypedScores:
    """Type-aware span matching over the targeted gold types.

    ``gold_types`` are the gold labels that count: ``--positive`` if given, else
    every gold label some guard label may match. Predictions count when their
    label may match a targeted type; ``unjudged`` counts the rest (the data does
    not annotate them, so they are neither right nor wrong here).
    """

    gold_types: frozenset[str]
    overall: EntityTally = field(default_factory=EntityTally)
    per_type: dict[str, EntityTally] = field(default_factory=dict)
    unjudged: int = 0


@dataclass(frozen=True, slots=True)
class Latency:
    """Milliseconds per item, for ``engine.run`` alone."""

    p50: float
    p95: float
    mean: float


@dataclass
class Scores:
    """The figures of a set of rows; ``per_source`` holds the same figures for each source's rows
    (None when no row names a source)."""

    item: Confusion
    latency: Latency
    failures: int
    spans: SpanScores | None = None
    typed: TypedScores | None = None
    by_length: dict[str, Confusion] | None = None
    per_source: dict[str, Scores] | None = None
    review: ReviewScores | None = None


def percentile(values: Sequence[float], share: float) -> float:
    """Nearest-rank percentile: a value that was actually observed, for any number of values."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share / 100 * len(ordered)) - 1)]


def latency_of(observations: Sequence[Observation]) -> Latency:
    millis = [o.seconds * 1000 for o in observations]
    return Latency(percentile(millis, 50), percentile(millis, 95), sum(millis) / len(millis))


def prediction_labels(
    guard_labels: frozenset[str], gold_labels: frozenset[str], positive: frozenset[str] | None
) -> frozenset[str] | None:
    """Which predicted labels count, or None for all.

    ``--positive`` names gold labels (Presidio entity types). A guard that uses
    the same names (``US_SSN``) is narrowed to them; a guard with its own names
    (``CREDENTIAL``, ``pattern:0``) cannot be, so all its spans count rather
    than none. The choice is reported with the figures. Aliases count: with
    ``--positive GPE``, a guard's LOCATION spans are kept.
    """
    if positive is None:
        return None
    matchable = frozenset[str]().union(*(gold_labels_matched_by(label) for label in guard_labels))
    if not matchable & gold_labels:
        return None
    return positive | {label for label, gold in MATCHING_GOLD_LABELS.items() if gold & positive}


@dataclass(frozen=True)
class _Rules:
    """What decides how rows are judged, fixed once for a whole data set and reused for each source."""

    schema: Schema
    gold_labels: frozenset[str]
    guard_labels: frozenset[str]
    positive: frozenset[str] | None


def score(dataset: Dataset, observations: Sequence[Observation], positive: frozenset[str] | None) -> Scores:
    guard_labels = frozenset(span.label for o in observations for span in o.spans)
    rules = _Rules(dataset.schema, dataset.gold_labels, guard_labels, positive)
    scores = _score_rows(rules, dataset.items, observations)
    groups = _rows_by_source(dataset.items)
    if groups is not None:
        scores.per_source = {
            source: _score_rows(rules, [dataset.items[i] for i in rows], [observations[i] for i in rows])
            for source, rows in groups.items()
        }
    return scores


def _rows_by_source(items: Sequence[LabelledItem]) -> dict[str, list[int]] | None:
    """Row indexes of each source, sources in order of first appearance; None if no row names one."""
    if all(item.source is None for item in items):
        return None
    groups: dict[str, list[int]] = {}
    for index, item in enumerate(items):
        groups.setdefault(item.source or NO_SOURCE, []).append(index)
    return groups


def _score_rows(rules: _Rules, items: Sequence[LabelledItem], observations: Sequence[Observation]) -> Scores:
    scores = Scores(Confusion(), latency_of(observations), sum(o.failures for o in observations))
    if rules.schema == "pii":
        scores.spans = _score_spans(rules, items, observations, scores.item)
        scores.typed = _score_typed(rules, items, observations)
        return scores
    for item, observation in zip(items, observations, strict=True):
        scores.item.count(item.positive, observation.fired)
    if rules.schema == "grounding":
        scores.by_length = _by_length(items, observations)
    if rules.schema == "review":
        scores.review = score_review([(item.gold_verdict, item.gold_labels) for item in items],
                                     [o.verdict for o in observations], [o.firings for o in observations])
    return scores


def _score_spans(
    rules: _Rules, items: Sequence[LabelledItem], observations: Sequence[Observation], item_level: Confusion
) -> SpanScores:
    """Item level (``item_level``, filled in here) and span level for PII data.

    Only spans predict here: a fail-closed guard failure carries no span, so it predicts nothing.
    """
    keep = prediction_labels(rules.guard_labels, rules.gold_labels, rules.positive)
    spans = SpanScores(filter_applied=keep is not None, guard_labels=rules.guard_labels)
    for item, observation in zip(items, observations, strict=True):
        predicted = _distinct_spans(observation.spans, keep)
        item_level.count(item.positive, bool(predicted))
        spans.predicted += len(predicted)
        spans.matched += sum(any(p.overlaps(g) for g in item.spans) for p in predicted)
        for gold in item.spans:
            found = any(p.overlaps(gold) for p in predicted)
            label = spans.per_label.setdefault(gold.label, LabelRecall())
            label.gold += 1
            label.found += found
            spans.gold += 1
            spans.found += found
    return spans


def _score_typed(
    rules: _Rules, items: Sequence[LabelledItem], observations: Sequence[Observation]
) -> TypedScores | None:
    """Type-aware precision, recall and F1, overall and per label; None if no guard label names a gold type.

    A guard with its own labels (``CREDENTIAL``, ``pattern:0``) cannot be judged by type.
    """
    matchable = frozenset[str]().union(*(gold_labels_matched_by(label) for label in rules.guard_labels))
    if not matchable & rules.gold_labels:
        return None
    gold_types = rules.positive if rules.positive is not None else matchable & rules.gold_labels
    typed = TypedScores(gold_types)
    for item, observation in zip(items, observations, strict=True):
        gold_spans = [g for g in item.spans if g.label in gold_types]
        predicted = []
        for span in {(s.start, s.end, s.label): s for s in observation.spans}.values():
            if gold_labels_matched_by(span.label) & gold_types:
                predicted.append(span)
            else:
                typed.unjudged += 1
        for span in predicted:
            correct = any(type_matches(span, g) for g in gold_spans)
            for tally in (typed.overall, typed.per_type.setdefault(span.label, EntityTally())):
                tally.predicted += 1
                tally.correct += correct
        for gold in gold_spans:
            found = any(type_matches(p, gold) for p in predicted)
            for tally in (typed.overall, typed.per_type.setdefault(gold.label, EntityTally())):
                tally.gold += 1
                tally.found += found
    return typed


def _distinct_spans(spans: Sequence[LabelledSpan], keep: frozenset[str] | None) -> list[LabelledSpan]:
    """Kept spans, one per (start, end): two guards finding the same text is one prediction."""
    distinct: dict[tuple[int, int], LabelledSpan] = {}
    for span in spans:
        if keep is None or span.label in keep:
            distinct.setdefault((span.start, span.end), span)
    return list(distinct.values())


def _by_length(items: Sequence[LabelledItem], observations: Sequence[Observation]) -> dict[str, Confusion]:
    buckets = {name: Confusion() for name, _ in LENGTH_BUCKETS}
    for item, observation in zip(items, observations, strict=True):
        words = len(item.text.split())
        name = next(name for name, most in LENGTH_BUCKETS if words <= most)
        buckets[name].count(item.positive, observation.fired)
    return buckets
