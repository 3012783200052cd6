"""Labelled JSONL files: which schema a file uses, and its rows as items to score.

The schema is read from the first row's keys, so the shared datasets need no
header or flag. Every row is validated against that schema and a problem names
the file and the line: a row skipped in silence would change the figures
without anyone noticing.

A row may say where it comes from in ``meta.source``; figures are then also
given per source, so a guard tuned on one kind of text can be seen to hold (or
not) on another. The source is the data set, not the file inside it: the text
up to the first space or colon (``"microsoft/TOXIGEN prompts/hate_asian_1k.txt"``
is ``microsoft/TOXIGEN``), because several sets keep each label in a file of its
own and a per-file split would be a per-label split.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from guardproxy.evaluation.reviewed import NO_TEXT, parse_review_row

Schema = Literal["pii", "grounding", "toxicity", "injection", "topics", "review"]

# The key that gives a schema away (tried in this order), and the keys every row of it needs.
_SCHEMAS: dict[Schema, tuple[str, dict[str, type]]] = {
    "pii": ("spans", {"text": str, "spans": list}),
    "grounding": ("grounded", {"context": str, "question": str, "answer": str, "grounded": bool}),
    "toxicity": ("toxic", {"text": str, "toxic": bool}),
    "injection": ("injection", {"text": str, "injection": bool}),
    "topics": ("topic", {"text": str, "topic": str}),
    "review": ("gold", {"stage": str}),  # reviewed.py validates the rest; its text may be null
}


# Where a meta.source string stops naming the data set and starts naming a file or a split in it.
_SOURCE_END = re.compile(r"[\s:]")


class DatasetError(Exception):
    """The data file cannot be scored; the message names the file and, where it can, the line."""


@dataclass(frozen=True, slots=True)
class LabelledSpan:
    """A character span, end exclusive: a gold annotation or a guard's finding."""

    start: int
    end: int
    label: str

    def overlaps(self, other: LabelledSpan) -> bool:
        return self.start < other.end and other.start < self.end


@dataclass(frozen=True, slots=True)
class LabelledItem:
    """One row as the chain sees it, with the gold answer.

    ``spans`` are the gold PII spans that count (those with a ``--positive``
    label, if given). ``documents`` and ``question`` are grounding context.
    ``source`` is the data set it comes from (see ``source_name``), if the row says.
    Reviewed rows (``reviewed.py``) also carry the reviewer's verdict and labels, and the live
    findings that ``audit.placeholders`` may credit.
    """

    line: int
    text: str
    positive: bool
    spans: tuple[LabelledSpan, ...] = ()
    documents: tuple[str, ...] = ()
    question: str | None = None
    source: str | None = None
    stage: str | None = None
    gold_verdict: str | None = None
    gold_labels: tuple[str, ...] | None = None
    live_findings: tuple[tuple[str, str, str], ...] = ()


@dataclass(frozen=True)
class Dataset:
    """The rows of one file. ``gold_labels`` are the PII labels or topics it uses, before any filter.
    ``skipped`` counts rows left out, by reason (review data: not reviewed, no text, other stage)."""

    schema: Schema
    items: list[LabelledItem]
    gold_labels: frozenset[str]
    skipped: dict[str, int] = field(default_factory=dict)


def source_name(source: str) -> str:
    """The data set a ``meta.source`` names: its text up to the first space or colon."""
    return _SOURCE_END.split(source.strip(), maxsplit=1)[0]


def detect_schema(row: dict[str, Any], where: str) -> Schema:
    for schema, (key, _) in _SCHEMAS.items():
        if key in row:
            return schema
    known = "; ".join(f"{name}: {', '.join(keys)}" for name, (_, keys) in _SCHEMAS.items())
    keys = ", ".join(sorted(row)) or "none"
    raise DatasetError(f"{where}: unknown schema (keys: {keys}); known schemas are {known}")


def read_dataset(path: Path, positive: frozenset[str] | None, limit: int | None,
                 stage: str | None = None) -> Dataset:
    """Read the first ``limit`` rows (all if None); blank lines are not rows. Review rows of
    another ``stage``, not reviewed, or without text are skipped and counted."""
    schema: Schema | None = None
    items: list[LabelledItem] = []
    labels: set[str] = set()
    skipped: Counter[str] = Counter()
    try:
        with path.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if limit is not None and len(items) >= limit:
                    break
                if not line.strip():
                    continue
                where = f"{path}:{number}"
                row = _parse_row(line, where)
                if schema is None:
                    schema = detect_schema(row, where)
                item = (_review_item(row, number, where, stage) if schema == "review"
                        else _item(schema, row, number, where, positive, labels))
                if isinstance(item, str):
                    skipped[item] += 1
                else:
                    items.append(item)
    except FileNotFoundError:
        raise DatasetError(f"{path}: no such file") from None
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if schema is None:
        raise DatasetError(f"{path}: no rows")
    if not items:
        reasons = ", ".join(f"{count} {reason}" for reason, count in sorted(skipped.items()))
        raise DatasetError(f"{path}: no rows to score (skipped: {reasons})")
    return Dataset(schema, items, frozenset(labels), dict(sorted(skipped.items())))


def _parse_row(line: str, where: str) -> dict[str, Any]:
    try:
        row = json.loads(line)
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{where}: not valid JSON: {exc.msg} (column {exc.colno})") from None
    if not isinstance(row, dict):
        raise DatasetError(f"{where}: a row must be a JSON object, not {type(row).__name__}")
    return row


def _item(
    schema: Schema, row: dict[str, Any], number: int, where: str, positive: frozenset[str] | None, labels: set[str]
) -> LabelledItem:
    """Validate ``row`` and turn it into an item; add its gold labels to ``labels``."""
    for key, kind in _SCHEMAS[schema][1].items():
        if not isinstance(row.get(key), kind):
            raise DatasetError(f"{where}: {key!r} must be a {kind.__name__} in every {schema} row")
    source = _source(row, where)
    if schema == "pii":
        gold = _gold_spans(row["spans"], row["text"], where)
        labels.update(span.label for span in gold)
        counted = tuple(span for span in gold if positive is None or span.label in positive)
        return LabelledItem(number, row["text"], bool(counted), counted, source=source)
    if schema == "grounding":
        # The guard should fire on an answer the context does not support.
        return LabelledItem(number, row["answer"], not row["grounded"], documents=(row["context"],),
                            question=row["question"], source=source)
    if schema == "topics":
        labels.add(row["topic"])
        return LabelledItem(number, row["text"], positive is not None and row["topic"] in positive, source=source)
    return LabelledItem(number, row["text"], row[_SCHEMAS[schema][0]], source=source)


def _review_item(row: dict[str, Any], number: int, where: str, stage: str | None) -> LabelledItem | str:
    """A reviewed row (positive when the reviewer's verdict is not ``pass``), or why it is skipped:
    another stage than ``stage``, no text, not reviewed."""
    try:
        review = parse_review_row(row, number, where)
    except ValueError as exc:
        raise DatasetError(str(exc)) from None
    if stage is not None and review.stage != stage:
        return f"other stage ({review.stage})"
    if review.skip_reason is not None or review.text is None:
        return review.skip_reason or NO_TEXT
    return LabelledItem(number, review.text, review.gold != "pass", stage=review.stage, source=_source(row, where),
                        gold_verdict=review.gold, gold_labels=review.gold_labels, live_findings=review.live_findings)


def _source(row: dict[str, Any], where: str) -> str | None:
    """The row's data set (``source_name`` of ``meta.source``), or None if the row does not say."""
    meta = row.get("meta")
    if meta is None:
        return None
    if not isinstance(meta, dict):
        raise DatasetError(f"{where}: 'meta' must be an object")
    source = meta.get("source")
    if source is None:
        return None
    if not isinstance(source, str) or not source_name(source):
        raise DatasetError(f"{where}: 'meta.source' must be a non-empty string")
    return source_name(source)


def _gold_spans(raw: list[Any], text: str, where: str) -> list[LabelledSpan]:
    spans = []
    for index, span in enumerate(raw):
        if not (isinstance(span, dict) and isinstance(span.get("start"), int) and isinstance(span.get("end"), int)
                and isinstance(span.get("label"), str)):
            raise DatasetError(f"{where}: spans[{index}] must be {{\"start\": int, \"end\": int, \"label\": str}}")
        if not 0 <= span["start"] < span["end"] <= len(text):
            raise DatasetError(f"{where}: spans[{index}] [{span['start']}, {span['end']}) is not inside the text "
                               f"({len(text)} characters)")
        spans.append(LabelledSpan(span["start"], span["end"], span["label"]))
    return spans
