"""``guardproxy review``: the decisions of an audit trail, as rows for a person to label.

Every blocked, redacted or flagged record gives one row per stage that did not pass, in the
format of ``evaluation/reviewed.py``: the stage's stored text (its segments joined by a blank
line; ``null`` when the trail stored no text), what the live policy predicted (the stage's
verdict and each entry and label that fired) and ``gold: null`` for the reviewer. The file is
written whole, in trail order, so two exports of one trail are identical.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from guardproxy.audit.record import AuditRecord
from guardproxy.evaluation.reviewed import review_row

SEGMENT_SEPARATOR = "\n\n"
_REVIEWED = ("blocked", "redacted", "flagged")


@dataclass(slots=True)
class ReviewCounts:
    records: int = 0  # read from the trail
    exported: int = 0  # blocked, redacted or flagged, with at least one row
    rows: int = 0
    without_text: int = 0  # rows whose text is null


def rows_of(record: AuditRecord) -> list[dict[str, Any]]:
    """The review rows of one record: one per stage that did not pass (none if the record passed)."""
    if record.verdict not in _REVIEWED:
        return []
    meta = {"request_id": record.request_id, "time": record.time, "policy": record.policy,
            "policy_version": record.policy_version, "chain": record.chain, "api": record.api, "model": record.model}
    rows = []
    for stage in ("input", "output"):
        verdict = record.stages.get(stage, "pass")
        if verdict == "pass":
            continue
        texts = (record.text or {}).get(stage)
        text = SEGMENT_SEPARATOR.join(t.text for t in texts) if texts is not None else None
        fired = [{"entry": g.name, "guard": g.guard, "label": label, "action": g.action, "mode": g.mode}
                 for g in record.guards if g.stage == stage for label in g.labels]
        rows.append(review_row(text, stage, verdict, fired, meta))
    return rows


def write_review(records: Iterable[AuditRecord], out: str | Path) -> ReviewCounts:
    """Write the review rows of ``records`` to ``out`` (JSONL). Rows go to a temporary file beside
    it, renamed over ``out`` only once the whole trail was read: an unreadable trail leaves no
    half-written file, and a long trail is never held in memory."""
    out = Path(out)
    counts = ReviewCounts()
    partial = out.with_name(f".{out.name}.partial")
    try:
        with partial.open("w", encoding="utf-8") as lines:
            for record in records:
                counts.records += 1
                rows = rows_of(record)
                counts.exported += bool(rows)
                for row in rows:
                    counts.rows += 1
                    counts.without_text += row["text"] is None
                    lines.write(json.dumps(row, ensure_ascii=False) + "\n")
        os.replace(partial, out)
    finally:
        partial.unlink(missing_ok=True)
    return counts
