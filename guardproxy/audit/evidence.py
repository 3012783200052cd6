"""What one request leaves for the audit trail and its shadow policy, gathered as its stages settle.

Held in memory only until the request's record is written (and its shadow has run): the raw
segments are kept only for the shadow, and never leave the process. The text the trail may
keep is built here, at once. Masked in it: every span an entry with ``action: redact`` found,
in any mode, and every value the PII and secrets guards found, whatever the action or mode (a
personal value only flagged, or found in monitor mode, is never written either). What other
guards flagged or blocked (a toxic sentence, an injection, a banned phrase) stays readable, so
a reviewer can judge the decision and a replay can run on it.
"""


from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from guardproxy.audit.record import FindingRecord, TextRecord
from guardproxy.engine import Decision, GuardFailure, Verdict, verdict_of
from guardproxy.engine.redaction import Redaction, redact_spans
from guardproxy.guards import Segment
from guardproxy.policy import Policy

VALUE_GUARDS = frozenset({"pii", "secrets"})  # guards whose findings are values to keep out of the trail


@dataclass(slots=True)
class StageEvidence:
    verdict: Verdict
    findings: dict[str, list[FindingRecord]]  # by entry name
    text: list[TextRecord] | None  # masked, when the policy keeps text and it could be made safe
    segments: list[Segment] | None  # raw, for the shadow only


@dataclass(slots=True)
class RequestEvidence:
    """Filled by ``RequestContext.stage_done``. ``audit``/``shadows``: whether the proxy writes a
    trail and has shadow policies; ``routed`` then says what this request's policy needs kept."""

    audit: bool
    shadows: bool
    keep_text: bool = False
    keep_segments: bool = False
    stages: dict[str, StageEvidence] = field(default_factory=dict)
    unguarded_input: list[Segment] | None = None  # the request's text when the live chain has no input stage
    documents: tuple[str, ...] = ()  # guardproxy.context documents, for the shadow's output stage

    def routed(self, policy: Policy) -> None:
        self.keep_text = self.audit and policy.audit.text == "redacted"
        self.keep_segments = self.shadows and policy.shadow is not None

    def stage(self, stage: str, decisions: Sequence[Decision], failures: Sequence[GuardFailure],
              segments: Sequence[Segment] | None, streamed: list[Segment] | None = None) -> None:
        """A settled stage. ``segments`` are the texts the decisions index (None for a stream,
        whose decisions index windows); ``streamed`` is a stream's whole text per channel."""
        findings = finding_records(decisions, segments)
        text = None
        if self.keep_text and segments is not None:
            text = _masked(segments, decisions, failures)
        kept = list(segments) if self.keep_segments and segments is not None else streamed
        self.stages[stage] = StageEvidence(verdict_of(decisions, failures), findings, text, kept)


def finding_records(decisions: Sequence[Decision],
                    segments: Sequence[Segment] | None) -> dict[str, list[FindingRecord]]:
    """Each entry's findings as the trail records them: the segment's path where ``segments`` says
    it, the offsets, or the document. A failing guard's block is left out (it is its failure)."""
    findings: dict[str, list[FindingRecord]] = {}
    for d in decisions:
        if d.segment < 0 and d.document is None:
            continue
        path = list(segments[d.segment].path) if segments is not None and 0 <= d.segment < len(segments) else None
        findings.setdefault(d.name, []).append(FindingRecord(d.label, round(d.score, 4), path, d.start, d.end,
                                                             d.document))
    return findings


def _masked(segments: Sequence[Segment], decisions: Sequence[Decision],
            failures: Sequence[GuardFailure]) -> list[TextRecord] | None:
    """Each segment with the values it must not keep masked; None when any guard of the stage failed
    (what it would have found was never found, so no text of the stage can be trusted to be clean)."""
    if failures:
        return None
    spans: dict[int, list[Redaction]] = {}
    whole: dict[int, str] = {}
    for d in decisions:
        if not 0 <= d.segment < len(segments):
            continue
        if d.action != "redact" and d.guard not in VALUE_GUARDS:
            continue
        if d.start is not None and d.end is not None:
            spans.setdefault(d.segment, []).append(Redaction(d.start, d.end, d.replacement or f"[{d.label}]"))
        else:
            whole[d.segment] = d.replacement or f"[{d.label}]"
    records = []
    for index, segment in enumerate(segments):
        text = whole.get(index) or redact_spans(segment.text, spans.get(index, []))
        records.append(TextRecord(_plain_path(segment.path), segment.role, text))
    return records


def _plain_path(path: Sequence[Any]) -> list[str | int]:
    return [part if isinstance(part, int) else str(part) for part in path]
