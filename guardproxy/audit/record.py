"""The audit record, format version 1: one JSON object per line, one line per guarded request.

Writers (``writer.py``) build it from the request's ``RequestReport``; readers (``replay``,
``review``, ``report``) parse it back with ``parse_record``, which refuses a line of
another version or shape rather than guess. The format is documented in the README
("Audit trail"); a change that is not additive bumps ``v``.

A record never holds a raw value a guard redacted: ``text`` is present only when the
policy says ``audit: {text: redacted}``, and then holds each stage's segments *after*
redaction. Spans are offsets into that stage's text before redaction, so they locate a
finding without carrying it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

VERSION = 1
VERDICTS = ("pass", "flagged", "redacted", "blocked")
STAGES = ("input", "output")


class RecordError(ValueError):
    """A line that is not a version-1 audit record; the message says what is wrong."""


@dataclass(frozen=True, slots=True)
class FindingRecord:
    label: str
    score: float
    segment: list[str | int] | None  # the segment's path in the payload; None for a whole-run decision
    start: int | None = None
    end: int | None = None
    document: int | None = None  # index into the request's guardproxy.context documents


@dataclass(frozen=True, slots=True)
class GuardRecord:
    """One policy entry's work in one stage (a stream's many windows summed)."""

    stage: str
    guard: str
    name: str
    action: str
    mode: str
    outcome: str  # ok, error, timeout (the worst of its runs)
    seconds: float  # summed over its runs
    runs: int
    labels: list[str]
    findings: list[FindingRecord]
    error: str | None = None  # error or timeout, with whether it blocked: "timeout (blocked)"


@dataclass(frozen=True, slots=True)
class TextRecord:
    """One segment's text after redaction, with where it sat."""

    path: list[str | int]
    role: str | None
    text: str


@dataclass(frozen=True, slots=True)
class ShadowRecord:
    policy: str
    version: str
    chain: str
    verdict: str
    stages: dict[str, str]
    guards: list[GuardRecord]


@dataclass(frozen=True, slots=True)
class AuditRecord:
    time: str  # RFC 3339, UTC, when the response ended
    request_id: str
    trace_id: str | None
    api: str
    path: str
    model: str | None
    client_key: str | None
    policy: str
    policy_version: str
    chain: str
    status: int
    verdict: str
    stages: dict[str, str]  # the verdict of each stage that ran
    duration_ms: float
    guards: list[GuardRecord]
    text: dict[str, list[TextRecord]] | None = None
    shadow: ShadowRecord | None = None
    sample_passed: float = 1.0  # the policy's rate for passed requests: a passed record stands for 1/rate
    v: int = VERSION
    extra: dict[str, Any] = field(default_factory=dict)  # keys a later minor writer added, kept on re-write

    def to_json(self) -> str:
        body = _plain(self)
        body.pop("extra")
        body.update(self.extra)
        ordered = {"v": body.pop("v"), **body}
        return json.dumps(ordered, ensure_ascii=False, separators=(",", ":"))


def _plain(value: Any) -> Any:
    if hasattr(value, "__dataclass_fields__"):
        return {name: _plain(getattr(value, name)) for name in value.__dataclass_fields__}
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


def _need(body: dict[str, Any], key: str, kinds: type | tuple[type, ...], where: str) -> Any:
    if key not in body:
        raise RecordError(f"{where}: missing {key!r}")
    value = body[key]
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in _as_tuple(kinds)):
        raise RecordError(f"{where}: {key!r} has the wrong type ({type(value).__name__})")
    return value


def _as_tuple(kinds: type | tuple[type, ...]) -> tuple[type, ...]:
    return kinds if isinstance(kinds, tuple) else (kinds,)


def _verdict(value: Any, where: str) -> str:
    if value not in VERDICTS:
        raise RecordError(f"{where}: verdict {value!r} is not one of {', '.join(VERDICTS)}")
    return str(value)


def _stages(value: Any, where: str) -> dict[str, str]:
    if not isinstance(value, dict) or not set(value) <= set(STAGES):
        raise RecordError(f"{where}: 'stages' must map input/output to verdicts")
    return {stage: _verdict(verdict, f"{where}.stages.{stage}") for stage, verdict in value.items()}


def _finding(body: Any, where: str) -> FindingRecord:
    if not isinstance(body, dict):
        raise RecordError(f"{where}: a finding must be an object")
    segment = body.get("segment")
    if segment is not None and not (isinstance(segment, list) and all(isinstance(p, str | int) for p in segment)):
        raise RecordError(f"{where}: 'segment' must be a path (a list of keys and indexes) or null")
    optional = {key: body.get(key) for key in ("start", "end", "document")}
    for key, value in optional.items():
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
            raise RecordError(f"{where}: {key!r} must be an integer or null")
    return FindingRecord(_need(body, "label", str, where), float(_need(body, "score", (int, float), where)),
                         segment, optional["start"], optional["end"], optional["document"])


def _guard(body: Any, where: str) -> GuardRecord:
    if not isinstance(body, dict):
        raise RecordError(f"{where}: a guard run must be an object")
    findings = [_finding(f, f"{where}.findings.{i}") for i, f in enumerate(_need(body, "findings", list, where))]
    labels = _need(body, "labels", list, where)
    if not all(isinstance(label, str) for label in labels):
        raise RecordError(f"{where}: 'labels' must be strings")
    error = body.get("error")
    if error is not None and not isinstance(error, str):
        raise RecordError(f"{where}: 'error' must be a string or null")
    return GuardRecord(_need(body, "stage", str, where), _need(body, "guard", str, where),
                       _need(body, "name", str, where), _need(body, "action", str, where),
                       _need(body, "mode", str, where),
                       _need(body, "outcome", str, where), float(_need(body, "seconds", (int, float), where)),
                       _need(body, "runs", int, where), labels, findings, error)


def _texts(body: Any, where: str) -> dict[str, list[TextRecord]] | None:
    if body is None:
        return None
    if not isinstance(body, dict) or not set(body) <= set(STAGES):
        raise RecordError(f"{where}: 'text' must map input/output to lists of segments")
    texts: dict[str, list[TextRecord]] = {}
    for stage, items in body.items():
        if not isinstance(items, list):
            raise RecordError(f"{where}.text.{stage}: must be a list")
        texts[stage] = []
        for i, item in enumerate(items):
            at = f"{where}.text.{stage}.{i}"
            if not isinstance(item, dict):
                raise RecordError(f"{at}: must be an object")
            role = item.get("role")
            if role is not None and not isinstance(role, str):
                raise RecordError(f"{at}: 'role' must be a string or null")
            texts[stage].append(TextRecord(_need(item, "path", list, at), role, _need(item, "text", str, at)))
    return texts


def _shadow(body: Any, where: str) -> ShadowRecord | None:
    if body is None:
        return None
    if not isinstance(body, dict):
        raise RecordError(f"{where}: 'shadow' must be an object")
    guards = [_guard(g, f"{where}.shadow.guards.{i}") for i, g in enumerate(_need(body, "guards", list, where))]
    return ShadowRecord(_need(body, "policy", str, where), _need(body, "version", str, where),
                        _need(body, "chain", str, where), _verdict(body.get("verdict"), f"{where}.shadow"),
                        _stages(body.get("stages"), f"{where}.shadow"), guards)


_KNOWN = {"v", "time", "request_id", "trace_id", "api", "path", "model", "client_key", "policy", "policy_version",
          "chain", "status", "verdict", "stages", "duration_ms", "guards", "text", "shadow", "sample_passed"}


def _rate(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise RecordError(f"{where}: 'sample_passed' must be a number from 0 to 1")
    return float(value)


def parse_record(line: str, where: str = "record") -> AuditRecord:
    """One JSONL line as an ``AuditRecord``; ``RecordError`` (naming ``where``) if it is not one."""
    try:
        body = json.loads(line)
    except json.JSONDecodeError as exc:
        raise RecordError(f"{where}: not JSON ({exc.msg})") from None
    if not isinstance(body, dict):
        raise RecordError(f"{where}: not a JSON object")
    if body.get("v") != VERSION:
        raise RecordError(f"{where}: audit format version {body.get('v')!r}; this guardproxy reads version {VERSION}")
    optional_text = {key: body.get(key) for key in ("trace_id", "model", "client_key")}
    for key, value in optional_text.items():
        if value is not None and not isinstance(value, str):
            raise RecordError(f"{where}: {key!r} must be a string or null")
    guards = [_guard(g, f"{where}.guards.{i}") for i, g in enumerate(_need(body, "guards", list, where))]
    return AuditRecord(
        time=_need(body, "time", str, where), request_id=_need(body, "request_id", str, where),
        trace_id=optional_text["trace_id"], api=_need(body, "api", str, where), path=_need(body, "path", str, where),
        model=optional_text["model"], client_key=optional_text["client_key"],
        policy=_need(body, "policy", str, where), policy_version=_need(body, "policy_version", str, where),
        chain=_need(body, "chain", str, where), status=_need(body, "status", int, where),
        verdict=_verdict(body.get("verdict"), where), stages=_stages(body.get("stages", {}), where),
        duration_ms=float(_need(body, "duration_ms", (int, float), where)), guards=guards,
        text=_texts(body.get("text"), where), shadow=_shadow(body.get("shadow"), where),
        sample_passed=_rate(body.get("sample_passed", 1.0), where),
        extra={key: value for key, value in body.items() if key not in _KNOWN},
    )
