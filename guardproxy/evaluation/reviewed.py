"""Reviewed decisions: the labelled rows ``guardproxy review`` exports from an audit trail.

One row per (record, stage) that the live policy blocked, redacted or flagged::

    {"text": "...", "stage": "input",
     "predicted": {"verdict": "blocked", "fired": [{"entry": "prompt_injection", "guard": "keywords",
                                                    "label": "prompt_injection", "action": "block",
                                                    "mode": "enforce"}]},
     "gold": null,
     "meta": {"source": "audit", "request_id": "...", "policy": "default", "policy_version": "...",
              "chain": "default", "time": "..."}}

A person sets ``gold`` to the verdict the request should have had (``"pass"``, ``"flagged"``,
``"redacted"`` or ``"blocked"``), or to ``{"verdict": ..., "labels": [...]}`` to also say which
labels were right. Such a file is a regression set: ``guardproxy eval`` reads it (schema
``review``) and gives precision per guard entry, and ``guardproxy test --policy P FILE.jsonl``
runs each reviewed row as a case expecting its gold verdict. Rows still ``gold: null``, and rows
whose text the trail did not hold (``text: null``), are skipped and counted, never silently. The
text is the trail's masked text: a live finding whose mark is in it is credited as in ``replay``
(``audit/placeholders.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

VERDICTS = ("pass", "flagged", "redacted", "blocked")
STAGES = ("input", "output")
UNREVIEWED = "unreviewed (gold null)"
NO_TEXT = "no text in the trail"


@dataclass(frozen=True, slots=True)
class ReviewRow:
    """One row, validated. ``gold`` is None until a person reviewed it; ``text`` is None when the
    trail stored none. ``gold_labels`` is None when the reviewer judged the verdict only."""

    line: int
    stage: str
    text: str | None
    predicted: str
    gold: str | None
    gold_labels: tuple[str, ...] | None
    request_id: str | None
    chain: str | None
    live_findings: tuple[tuple[str, str, str], ...] = ()  # what fired live: (entry, guard, label)

    @property
    def skip_reason(self) -> str | None:
        """Why the row cannot be measured or tested, if it cannot."""
        if self.text is None:
            return NO_TEXT
        return UNREVIEWED if self.gold is None else None


def review_row(text: str | None, stage: str, verdict: str, fired: Sequence[dict[str, str]],
               meta: dict[str, Any]) -> dict[str, Any]:
    """A row to review, with ``gold`` empty and ``meta.source`` "audit"."""
    return {"text": text, "stage": stage, "predicted": {"verdict": verdict, "fired": list(fired)}, "gold": None,
            "meta": {"source": "audit", **meta}}


def parse_review_row(row: dict[str, Any], line: int, where: str) -> ReviewRow:
    """A row as a ``ReviewRow``; ``ValueError`` naming ``where`` and the key if it is not one."""
    text = row.get("text")
    if text is not None and not isinstance(text, str):
        raise ValueError(f"{where}: 'text' must be a string or null")
    stage = row.get("stage")
    if stage not in STAGES:
        raise ValueError(f"{where}: 'stage' must be 'input' or 'output'")
    predicted = row.get("predicted")
    if not isinstance(predicted, dict) or predicted.get("verdict") not in VERDICTS:
        raise ValueError(f"{where}: 'predicted.verdict' must be one of {', '.join(VERDICTS)}")
    gold, gold_labels = _gold(row.get("gold"), where)
    meta = row.get("meta") or {}
    if not isinstance(meta, dict):
        raise ValueError(f"{where}: 'meta' must be an object")
    request_id, chain = meta.get("request_id"), meta.get("chain")
    return ReviewRow(line, stage, text, predicted["verdict"], gold, gold_labels,
                     request_id if isinstance(request_id, str) else None, chain if isinstance(chain, str) else None,
                     _live_findings(predicted.get("fired", []), where))


def _live_findings(fired: Any, where: str) -> tuple[tuple[str, str, str], ...]:
    """The live firings, which ``audit.placeholders`` credits where their mark is in the text."""
    if not isinstance(fired, list):
        raise ValueError(f"{where}: 'predicted.fired' must be a list")
    found = []
    for index, item in enumerate(fired):
        if not (isinstance(item, dict) and all(isinstance(item.get(k), str) for k in ("entry", "guard", "label"))):
            raise ValueError(f"{where}: predicted.fired[{index}] must name its 'entry', 'guard' and 'label'")
        found.append((item["entry"], item["guard"], item["label"]))
    return tuple(found)


def _gold(gold: Any, where: str) -> tuple[str | None, tuple[str, ...] | None]:
    if gold is None or gold in VERDICTS:
        return gold, None
    if isinstance(gold, dict) and gold.get("verdict") in VERDICTS:
        labels = gold.get("labels")
        if labels is None:
            return gold["verdict"], None
        if isinstance(labels, list) and all(isinstance(label, str) for label in labels):
            return gold["verdict"], tuple(labels)
    raise ValueError(f"{where}: 'gold' must be null (not reviewed), one of {', '.join(VERDICTS)}, "
                     f"or {{\"verdict\": ..., \"labels\": [...]}}")


@dataclass(slots=True)
class EntryPrecision:
    """How often an entry fired on reviewed rows, and how often rightly: the row's gold verdict is
    not ``pass`` and, when the reviewer named labels, the entry fired one of them."""

    fired: int = 0
    correct: int = 0

    @property
    def precision(self) -> float | None:
        return self.correct / self.fired if self.fired else None


@dataclass(slots=True)
class ReviewScores:
    """Per-entry precision, and how many rows got exactly their gold verdict."""

    rows: int = 0
    verdict_agrees: int = 0
    per_entry: dict[str, EntryPrecision] = field(default_factory=dict)

    @property
    def verdict_accuracy(self) -> float | None:
        return self.verdict_agrees / self.rows if self.rows else None


def score_review(rows: Sequence[tuple[str | None, tuple[str, ...] | None]], verdicts: Sequence[str],
                 firings: Sequence[Sequence[tuple[str, str]]]) -> ReviewScores:
    """``rows`` are (gold verdict, gold labels); ``verdicts`` and ``firings`` (entry, label) what the
    chain did with each, in the same order."""
    scores = ReviewScores()
    for (gold, labels), verdict, fired in zip(rows, verdicts, firings, strict=True):
        scores.rows += 1
        scores.verdict_agrees += verdict == gold
        by_entry: dict[str, set[str]] = {}
        for entry, label in fired:
            by_entry.setdefault(entry, set()).add(label)
        for entry, entry_labels in by_entry.items():
            tally = scores.per_entry.setdefault(entry, EntryPrecision())
            tally.fired += 1
            tally.correct += gold != "pass" and (labels is None or bool(entry_labels & set(labels)))
    return scores
