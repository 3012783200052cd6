"""What a decision looks like to the outside: the violations a block reports, and the
log line. Neither ever contains the text that fired."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from guardproxy.engine import Decision, verdict_of
from guardproxy.guards import Segment
from guardproxy.policy import RouteChoice
from guardproxy.proxy.context import Outcome

log = logging.getLogger("guardproxy.decision")


def violations(decisions: Sequence[Decision], segments: Sequence[Segment] = ()) -> list[dict[str, Any]]:
    """Which guards fired with which labels, one entry per guard; given the run's ``segments``,
    where (``segments``: dotted payload paths; ``documents``: ``guardproxy.context`` indices)."""
    by_guard: dict[str, dict[str, Any]] = {}
    for d in decisions:
        entry = by_guard.setdefault(d.name, {"guard": d.guard, "name": d.name, "action": d.action, "labels": []})
        if d.label not in entry["labels"]:
            entry["labels"].append(d.label)
        if d.document is not None:
            _add(entry, "documents", d.document)
        elif 0 <= d.segment < len(segments):
            _add(entry, "segments", ".".join(str(part) for part in segments[d.segment].path))
    return list(by_guard.values())


def _add(entry: dict[str, Any], key: str, value: Any) -> None:
    values = entry.setdefault(key, [])
    if value not in values:
        values.append(value)


def log_decision(choice: RouteChoice, stage: str, outcome: Outcome) -> None:
    verdict = verdict_of(outcome.decisions, outcome.failures)
    if verdict == "pass" and not outcome.failures:
        return
    fired = ", ".join(f"{v['name']}:{'|'.join(v['labels'])}" for v in violations(outcome.decisions)) or "-"
    failed = ", ".join(f"{f.name}:{f.kind}" for f in outcome.failures) or "-"
    log.info("verdict=%s stage=%s policy=%s chain=%s fired=%s failed=%s", verdict, stage, choice.tag,
             choice.chain_name, fired, failed)
