"""Audit records built by hand, for the replay, review and report tests (no writer, no server)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from guardproxy.audit.record import AuditRecord, FindingRecord, GuardRecord, ShadowRecord, TextRecord


def guard(stage: str, name: str, labels: Sequence[str] = (), *, kind: str = "keywords", action: str = "block",
          mode: str = "enforce", seconds: float = 0.001) -> GuardRecord:
    findings = [FindingRecord(label, 1.0, ["messages", 0, "content"], 0, 3) for label in labels]
    return GuardRecord(stage, kind, name, action, mode, "ok", seconds, 1, list(labels), findings)


def texts(stage_texts: dict[str, str] | None) -> dict[str, list[TextRecord]] | None:
    if stage_texts is None:
        return None
    return {stage: [TextRecord(["messages", 0, "content"] if stage == "input" else ["choices", 0, "message",
                                                                                    "content"],
                               "user" if stage == "input" else "assistant", text)]
            for stage, text in stage_texts.items()}


def record(request_id: str, verdict: str, stages: dict[str, str], guards: Sequence[GuardRecord] = (), *,
           text: dict[str, str] | None = None, time: str = "2026-12-01T10:00:00.000Z", chain: str = "default",
           policy: str = "live", version: str = "v1", shadow: ShadowRecord | None = None) -> AuditRecord:
    return AuditRecord(time=time, request_id=request_id, trace_id=None, api="chat", path="/v1/chat/completions",
                       model="gpt-4o-mini", client_key=None, policy=policy, policy_version=version, chain=chain,
                       status=200, verdict=verdict, stages=stages, duration_ms=12.5, guards=list(guards),
                       text=texts(text), shadow=shadow)


def shadow(verdict: str, stages: dict[str, str], policy: str = "candidate", version: str = "v2") -> ShadowRecord:
    return ShadowRecord(policy, version, "default", verdict, stages, [])


def write_trail(path: Path, records: Iterable[AuditRecord]) -> Path:
    path.write_text("".join(r.to_json() + "\n" for r in records), encoding="utf-8")
    return path
