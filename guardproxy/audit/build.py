"""Turning a finished request (its telemetry report and its evidence) into an audit record.

Runs in the writer thread, from objects the request no longer changes.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from guardproxy.audit.evidence import RequestEvidence, finding_records
from guardproxy.audit.record import AuditRecord, GuardRecord, ShadowRecord, TextRecord
from guardproxy.engine import ChainResult, entry_names
from guardproxy.policy import Policy, RouteChoice
from guardproxy.policy.schema import GuardEntry
from guardproxy.telemetry.report import GuardRunReport, RequestReport

_OUTCOME_RANK = {"ok": 0, "error": 1, "timeout": 2}


@dataclass(frozen=True, slots=True)
class Finished:
    """A request as the audit trail needs it, captured when its response ended."""

    report: RequestReport
    evidence: RequestEvidence
    choice: RouteChoice
    trace_id: str | None
    ended_at: float  # time.time()


def rfc3339(seconds: float) -> str:
    whole = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    return f"{whole}.{int(seconds % 1 * 1000):03d}Z"


def _error(kind: str, blocked: bool) -> str:
    return f"{kind} ({'blocked' if blocked else 'allowed'})"


def _modes(policy: Policy, stage: str, chain: str) -> dict[str, str]:
    entries: Sequence[GuardEntry] = getattr(policy.chains[chain], stage)
    return {name: entry.mode or policy.defaults.mode for entry, name in zip(entries, entry_names(entries), strict=True)}


def _live_guards(finished: Finished) -> list[GuardRecord]:
    report, choice = finished.report, finished.choice
    grouped: dict[tuple[str, str], list[GuardRunReport]] = {}  # in order of first run
    for run in report.guard_runs:
        grouped.setdefault((run.stage, run.name), []).append(run)
    errors = {(f.stage, f.name): _error(f.kind, f.blocked) for f in report.failures}
    modes = {stage: _modes(choice.policy, stage, choice.chain_name) for stage in ("input", "output")}
    records = []
    for (stage, name), runs in grouped.items():
        first = runs[0]
        stage_evidence = finished.evidence.stages.get(stage)
        findings = stage_evidence.findings.get(name, []) if stage_evidence is not None else []
        records.append(GuardRecord(
            stage, first.guard, name, first.action, modes.get(stage, {}).get(name, choice.policy.defaults.mode),
            max((r.outcome for r in runs), key=lambda o: _OUTCOME_RANK.get(o, 1)),
            round(sum(r.seconds for r in runs), 6), len(runs),
            sorted({label for r in runs for label in r.labels} | {f.label for f in findings}), findings,
            errors.get((stage, name))))
    return records


def shadow_guards(policy: Policy, chain: str, results: dict[str, ChainResult]) -> list[GuardRecord]:
    """A shadow run's guards, as the live ones are recorded."""
    records = []
    for stage, result in results.items():
        modes = _modes(policy, stage, chain)
        failures = {f.name: _error(f.kind, f.blocked) for f in result.failures}
        found = finding_records(result.decisions, result.segments)
        for run in result.runs:
            findings = found.get(run.name, [])
            records.append(GuardRecord(stage, run.guard, run.name, run.action, modes.get(run.name, "monitor"),
                                       run.outcome, round(run.seconds, 6), 1, sorted({f.label for f in findings}),
                                       findings, failures.get(run.name)))
    return records


def build_record(finished: Finished, shadow: ShadowRecord | None = None) -> AuditRecord:
    report, evidence, choice = finished.report, finished.evidence, finished.choice
    text: dict[str, list[TextRecord]] | None = None
    if evidence.keep_text:
        text = {stage: kept.text for stage, kept in evidence.stages.items() if kept.text is not None}
    version = report.policy.rpartition("@")[2] if report.policy else ""
    return AuditRecord(
        time=rfc3339(finished.ended_at), request_id=report.request_id, trace_id=finished.trace_id,
        api=report.route, path=report.path, model=report.model, client_key=report.client_key,
        policy=choice.policy.name, policy_version=version, chain=choice.chain_name, status=report.status,
        verdict=report.verdict or "pass", stages={stage: kept.verdict for stage, kept in evidence.stages.items()},
        duration_ms=round((report.ended - report.started) * 1000, 3), guards=_live_guards(finished),
        text=text, shadow=shadow, sample_passed=choice.policy.audit.sample_passed)
