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
        "stage": info.stage, "positive": info.positive, "item": _confusion_json(scores.item),
    }
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


_ROW = "{:<18}{:>7}{:>7}{:>7}{:>7}{:>7}{:>11}{:>8}{:>7}{:>10}"


def _confusion_row(name: str, confusion: Confusion) -> str:
    return _ROW.format(name, confusion.items, confusion.tp, confusion.fp, confusion.fn, confusion.tn,
                       _shown(confusion.precision), _shown(confusion.recall), _shown(confusion.f1),
                       _shown(confusion.accuracy))


def report_text(info: RunInfo, scores: Scores) -> str:
    lines = [
        f"data: {info.data} ({info.rows} rows, schema {info.schema})  policy: {info.policy} chain: {info.chain} "
        f"stage: {info.stage}",
    ]
    if info.positive is not None:
        lines.append(f"positive: {', '.join(info.positive)}")
    lines.append(_ROW.format("", "items", "tp", "fp", "fn", "tn", "precision", "recall", "f1", "accuracy"))
    lines.append(_confusion_row("all items", scores.item))
    for name, confusion in (scores.by_length or {}).items():
        lines.append(_confusion_row(f"answer {name}", confusion))
    if scores.spans is not None:
        lines.extend(_span_lines(scores.spans))
        lines.extend(_typed_lines(scores.typed))
    latency = scores.latency
    lines.append(f"latency per item: p50 {latency.p50:.3f} ms  p95 {latency.p95:.3f} ms  mean {latency.mean:.3f} ms"
                 f"   guard failures: {scores.failures}")
    return "\n".join(lines)


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


_TYPED_ROW = "  {:<22}{:>10}{:>8}{:>11}{:>7}{:>7}{:>8}{:>7}"


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
        _TYPED_ROW.format("label", "predicted", "correct", "precision", "gold", "found", "recall", "f1"),
    ]
    for label, tally in [("all targeted types", overall), *_types_by_size(typed)]:
        lines.append(_TYPED_ROW.format(label, tally.predicted, tally.correct, _shown(tally.precision), tally.gold,
                                       tally.found, _shown(tally.recall), _shown(tally.f1)))
    return lines
