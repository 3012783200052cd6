"""The figures of one evaluation, as a plain-text table for people or one JSON object for scripts.

Both forms carry the same numbers; ratios that are undefined (0/0) are
``null`` in JSON and ``n/a`` in text.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from guardproxy.evaluation.datasets import Schema
from guardproxy.evaluation.scoring import (
    MATCHING_GOLD_LABELS,
    Confusion,
    EntityTally,
    LabelRecall,
    Scores,
    SpanScores,
    TypedScores,
)
from guardproxy.guards import Stage


@dataclass(frozen=True)
class RunInfo:
    """What was measured: the data, the policy (``name@digest``) and the chain stage."""

    data: str
    rows: int
    schema: Schema
    policy: str
    chain: str
    stage: Stage
    positive: list[str] | None
    skipped: dict[str, int] | None = None  # rows left out, by reason (reviewed data)


def _rounded(value: float | None, places: int = 4) -> float | None:
    return None if value is None else round(value, places)


def _confusion_json(confusion: Confusion) -> dict[str, Any]:
    return {
        "tp": confusion.tp, "fp": confusion.fp, "fn": confusion.fn, "tn": confusion.tn,
        "precision": _rounded(confusion.precision), "recall": _rounded(confusion.recall),
        "f1": _rounded(confusion.f1), "accuracy": _rounded(confusion.accuracy),
    }


def report_json(info: RunInfo, scores: Scores) -> dict[str, Any]:
    out: dict[str, Any] = {
        "data": info.data, "rows": info.rows, "schema": info.schema, "policy": info.policy, "chain": info.chain,
        "stage": info.stage, "positive": info.positive, **_scores_json(scores),
    }
    if info.skipped:
        out["skipped"] = info.skipped
    if scores.per_source is not None:
        out["per_source"] = {source: {"rows": part.item.items, **_scores_json(part)}
                             for source, part in scores.per_source.items()}
    return out


def _scores_json(scores: Scores) -> dict[str, Any]:
    """The figures of a set of rows: the whole data or one source's rows."""
    out: dict[str, Any] = {"item": _confusion_json(scores.item)}
    if scores.spans is not None:
        spans = scores.spans
        out["spans"] = {
            "predicted": spans.predicted, "matched": spans.matched, "gold": spans.gold, "found": spans.found,
            "precision": _rounded(spans.precision), "recall": _rounded(spans.recall), "f1": _rounded(spans.f1),
            "positive_filter_on_predictions": spans.filter_applied,
            "guard_labels": sorted(spans.guard_labels),
        }
        out["per_label"] = {
            label: {"gold": tally.gold, "found": tally.found, "recall": _rounded(tally.recall)}
            for label, tally in _labels_by_size(spans)
        }
    if scores.typed is not None:
        typed = scores.typed
        out["typed"] = {"gold_types": sorted(typed.gold_types), **_tally_json(typed.overall),
                        "unjudged": typed.unjudged,
                        "aliases": {label: sorted(gold) for label, gold in MATCHING_GOLD_LABELS.items()}}
        out["per_type"] = {label: _tally_json(tally) for label, tally in _types_by_size(typed)}
    if scores.review is not None:
        review = scores.review
        out["review"] = {
            "rows": review.rows, "verdict_agrees": review.verdict_agrees,
            "verdict_accuracy": _rounded(review.verdict_accuracy),
            "per_entry": {name: {"fired": tally.fired, "correct": tally.correct,
                                 "precision": _rounded(tally.precision)}
                          for name, tally in sorted(review.per_entry.items())},
        }
    if scores.by_length is not None:
        out["by_length"] = {name: {"items": c.items, **_confusion_json(c)} for name, c in scores.by_length.items()}
    latency = scores.latency
    out["latency_ms"] = {"p50": round(latency.p50, 4), "p95": round(latency.p95, 4), "mean": round(latency.mean, 4)}
    out["failures"] = scores.failures
    return out


def _tally_json(tally: EntityTally) -> dict[str, Any]:
    return {"predicted": tally.predicted, "correct": tally.correct, "precision": _rounded(tally.precision),
            "gold": tally.gold, "found": tally.found, "recall": _rounded(tally.recall), "f1": _rounded(tally.f1)}


def _types_by_size(typed: TypedScores) -> list[tuple[str, EntityTally]]:
    return sorted(typed.per_type.items(), key=lambda pair: (-pair[1].gold, -pair[1].predicted, pair[0]))


def _labels_by_size(spans: SpanScores) -> list[tuple[str, LabelRecall]]:
    return sorted(spans.per_label.items(), key=lambda pair: (-pair[1].gold, pair[0]))


def _shown(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


_ROW = "{:<{width}}{:>7}{:>7}{:>7}{:>7}{:>7}{:>11}{:>8}{:>7}{:>10}"


def _confusion_row(name: str, confusion: Confusion, width: int) -> str:
    return _ROW.format(name, confusion.items, confusion.tp, confusion.fp, confusion.fn, confusion.tn,
                       _shown(confusion.precision), _shown(confusion.recall), _shown(confusion.f1),
                       _shown(confusion.accuracy), width=width)


def report_text(info: RunInfo, scores: Scores) -> str:
    lines = [
        f"data: {info.data} ({info.rows} rows, schema {info.schema})  policy: {info.policy} chain: {info.chain} "
        f"stage: {info.stage}",
    ]
    if info.positive is not None:
        lines.append(f"positive: {', '.join(info.positive)}")
    if info.skipped:
        lines.append("skipped rows: " + ", ".join(f"{count} {reason}" for reason, count in info.skipped.items()))
    per_source = [(f"source {name}", part) for name, part in (scores.per_source or {}).items()]
    width = max([18, *(len(name) + 2 for name, _ in per_source)])
    lines.append(_ROW.format("", "items", "tp", "fp", "fn", "tn", "precision", "recall", "f1", "accuracy",
                             width=width))
    lines.append(_confusion_row("all items", scores.item, width))
    for name, confusion in (scores.by_length or {}).items():
        lines.append(_confusion_row(f"answer {name}", confusion, width))
    for name, part in per_source:
        lines.append(_confusion_row(name, part.item, width))
    if scores.spans is not None:
        lines.extend(_span_lines(scores.spans))
        lines.extend(_typed_lines(scores.typed))
        if scores.per_source is not None:
            lines.extend(_source_span_lines(scores.per_source))
    if scores.review is not None:
        lines.extend(_review_lines(scores))
    latency = scores.latency
    lines.append(f"latency per item: p50 {latency.p50:.3f} ms  p95 {latency.p95:.3f} ms  mean {latency.mean:.3f} ms"
                 f"   guard failures: {scores.failures}")
    return "\n".join(lines)


def _review_lines(scores: Scores) -> list[str]:
    """Reviewed rows: exact-verdict agreement, then each entry's precision (a firing is right when
    the gold verdict is not pass and, if the reviewer named labels, the entry fired one of them)."""
    review = scores.review
    assert review is not None
    lines = [f"reviewed rows: verdict as reviewed {review.verdict_agrees}/{review.rows} "
             f"({_shown(review.verdict_accuracy)})",
             f"  {'entry':<28}{'fired':>7}{'correct':>9}{'precision':>11}"]
    for name, tally in sorted(review.per_entry.items()):
        lines.append(f"  {name:<28}{tally.fired:>7}{tally.correct:>9}{_shown(tally.precision):>11}")
    return lines


def _span_lines(spans: SpanScores) -> list[str]:
    guard_labels = ", ".join(sorted(spans.guard_labels)) or "none"
    lines = [
        "spans (label-agnostic; a predicted span is right if it overlaps a gold span):",
        f"  predicted {spans.predicted}  matched {spans.matched}  precision {_shown(spans.precision)}   "
        f"gold {spans.gold}  found {spans.found}  recall {_shown(spans.recall)}   f1 {_shown(spans.f1)}",
        f"  guard labels: {guard_labels}; --positive filter on predictions: "
        f"{'applied' if spans.filter_applied else 'not applied'}",
        f"  {'gold label':<22}{'gold':>7}{'found':>7}{'recall':>8}",
    ]
    for label, tally in _labels_by_size(spans):
        lines.append(f"  {label:<22}{tally.gold:>7}{tally.found:>7}{_shown(tally.recall):>8}")
    return lines


_TYPED_ROW = "  {:<{width}}{:>10}{:>8}{:>11}{:>7}{:>7}{:>8}{:>7}"


def _typed_lines(typed: TypedScores | None) -> list[str]:
    if typed is None:
        return ["type-aware: not applicable (no guard label names a gold label)"]
    aliases = "; ".join(f"{label} ~ {', '.join(sorted(gold))}" for label, gold in MATCHING_GOLD_LABELS.items())
    overall = typed.overall
    lines = [
        "type-aware spans (a predicted span is right if it overlaps a gold span of a matching label; "
        f"aliases: {aliases}; other labels match themselves):",
        f"  gold types: {', '.join(sorted(typed.gold_types)) or 'none'}; "
        f"predictions of other types (unjudged): {typed.unjudged}",
        _TYPED_ROW.format("label", "predicted", "correct", "precision", "gold", "found", "recall", "f1", width=22),
    ]
    lines.extend(_typed_row(label, tally, 22) for label, tally in [("all targeted types", overall),
                                                                   *_types_by_size(typed)])
    return lines


def _typed_row(label: str, tally: EntityTally, width: int) -> str:
    return _TYPED_ROW.format(label, tally.predicted, tally.correct, _shown(tally.precision), tally.gold, tally.found,
                             _shown(tally.recall), _shown(tally.f1), width=width)


def _source_span_lines(per_source: dict[str, Scores]) -> list[str]:
    """Each source's label-agnostic spans, then its type-aware figures (all targeted types, then each type)."""
    width = max([22, *(len(name) + 2 for name in per_source)])
    lines = ["spans per source (label-agnostic):",
             _TYPED_ROW.format("source", "predicted", "matched", "precision", "gold", "found", "recall", "f1",
                               width=width)]
    for name, part in per_source.items():
        spans = part.spans
        assert spans is not None  # PII data has spans in every source
        lines.append(_TYPED_ROW.format(name, spans.predicted, spans.matched, _shown(spans.precision), spans.gold,
                                       spans.found, _shown(spans.recall), _shown(spans.f1), width=width))
    if all(part.typed is None for part in per_source.values()):
        return lines
    lines.append("type-aware spans per source (the source's targeted types, then each type):")
    lines.append(_TYPED_ROW.format("source / label", "predicted", "correct", "precision", "gold", "found", "recall",
                                   "f1", width=width))
    for name, part in per_source.items():
        if part.typed is not None:
            lines.append(_typed_row(name, part.typed.overall, width))
            lines.extend(_typed_row(f"  {label}", tally, width) for label, tally in _types_by_size(part.typed))
    return lines
