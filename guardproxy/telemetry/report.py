"""What telemetry is told about one request: a plain report, handed over once, when
the response has ended (for a stream, after its last byte, or when the client left).

The proxy fills it in; telemetry reads nothing else about the request (no scope,
no headers, no proxy objects) and turns it into metrics, the access log line and
trace spans. Nothing here holds request or answer text, except
``redacted_texts``: each stage's text after redaction, kept only when the
operator asked for it in traces (``--trace-content redacted``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from guardproxy.engine.verdict import Verdict


@dataclass(frozen=True, slots=True)
class GuardRunReport:
    """One guard's run in one chain run (a streamed answer has many)."""

    guard: str
    name: str
    stage: str
    action: str
    started_ns: int  # wall clock (time.time_ns) at the start of its chain run
    seconds: float
    outcome: str  # ok, error, timeout
    findings: int
    labels: tuple[str, ...]
    verdict: Verdict


@dataclass(frozen=True, slots=True)
class FindingReport:
    """One settled decision of a stage (counted once, however many stream windows saw it)."""

    stage: str
    guard: str
    name: str
    action: str
    mode: str
    label: str


@dataclass(frozen=True, slots=True)
class FailureReport:
    stage: str
    guard: str
    name: str
    kind: str  # error, timeout
    blocked: bool


@dataclass(slots=True)
class RequestReport:
    """Times are ``time.perf_counter()`` readings; None where it did not happen."""

    request_id: str
    route: str  # the API (chat, responses, messages, azure_chat, ...), or check, models, passthrough
    method: str
    path: str  # the canonical path
    started: float
    ended: float = 0.0
    status: int = 0
    model: str | None = None
    response_model: str | None = None
    verdict: Verdict | None = None  # None: no chain ran
    policy: str | None = None  # "<name>@<digest>"
    policy_name: str | None = None
    chain: str | None = None
    client_key: str | None = None  # the client key's name, where a keys file is configured
    auth_refused: bool = False  # refused for its key (401/403), before any guard ran
    upstream_sent: float | None = None
    upstream_done: float | None = None
    upstream_seconds: float | None = None  # upstream time less the output work done while it streamed
    upstream_error: str | None = None  # UPSTREAM_ERROR_KINDS in facade.py
    upstream_retries: list[str] = field(default_factory=list)  # why each retry was made (proxy/retry.py)
    input_seconds: float | None = None  # proxy time before the upstream call (or to the answer, without one)
    output_seconds: float | None = None
    first_content: float | None = None
    usage: dict[str, int] = field(default_factory=dict)
    guard_runs: list[GuardRunReport] = field(default_factory=list)
    findings: list[FindingReport] = field(default_factory=list)
    failures: list[FailureReport] = field(default_factory=list)
    redacted_texts: list[tuple[str, list[str]]] = field(default_factory=list)  # (stage, texts)
