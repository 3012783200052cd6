"""One request's observations: the proxy notes what happened as it goes, and
the metrics middleware turns the notes into metrics when the response ends."""

from __future__ import annotations

import itertools
import os
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from starlette.types import Scope

from guardproxy.engine.core import VERDICT_RANK, Verdict
from guardproxy.policy import RouteChoice
from guardproxy.proxy.decisions import Outcome
from guardproxy.proxy.upstream import classify_failure

if TYPE_CHECKING:
    from guardproxy.telemetry.facade import Telemetry
    from guardproxy.telemetry.tracing import RequestTrace

SCOPE_KEY = "guardproxy.telemetry"
_ID_PREFIX = os.urandom(3).hex()  # per process, so ids from several workers or restarts do not collide
_ID_COUNTER = itertools.count(1)


def next_request_id() -> str:
    """16 hex characters: 6 random per process, then a counter (a uuid4 per request costs more)."""
    return f"{_ID_PREFIX}{next(_ID_COUNTER) & 0xFFFFFFFFFF:010x}"

_FAILURE_KINDS = {"upstream_unreachable": "unreachable", "upstream_timeout": "timeout", "upstream_error": "error"}


@dataclass(slots=True, eq=False)
class RequestTelemetry:
    """Times are ``time.perf_counter()`` readings. Detached (``telemetry`` None)
    when metrics are off: every note is then kept and never reported."""

    telemetry: Telemetry | None
    route: str
    started: float = field(default_factory=time.perf_counter)
    model: str | None = None
    verdict: Verdict | None = None
    upstream_sent: float | None = None
    upstream_done: float | None = None
    upstream_error: str | None = None
    output_seconds: float | None = None
    trace: RequestTrace | None = None
    request_id: str = field(default_factory=next_request_id)
    fired: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    _output_while_upstream: float = 0.0

    def stage_done(self, choice: RouteChoice, outcome: Outcome, stage: str) -> None:
        """A stage's verdict, findings and guard failures (for streams: the whole stream's)."""
        if self.verdict is None or VERDICT_RANK[outcome.verdict] > VERDICT_RANK[self.verdict]:
            self.verdict = outcome.verdict
        for decision in outcome.decisions:  # names and labels only: never text
            fired = f"{stage}:{decision.name}:{decision.label}"
            if fired not in self.fired:
                self.fired.append(fired)
        self.failed.extend(f"{stage}:{failure.name}:{failure.kind}" for failure in outcome.failures)
        if self.telemetry is not None:
            self.telemetry.observe_stage(choice, outcome, stage)

    def upstream_sending(self, method: str = "") -> dict[str, str]:
        """Notes the send; returns the headers (``traceparent``) to add to the upstream request."""
        self.upstream_sent = time.perf_counter()
        return self.trace.upstream_started(method) if self.trace is not None else {}

    def upstream_answered(self, status: int) -> None:
        if self.trace is not None:
            self.trace.upstream_answered(status)
        if status == 429:
            self.upstream_error = "status_429"
        elif status >= 500:
            self.upstream_error = "status_5xx"

    def upstream_finished(self) -> None:
        """The upstream's answer was read to its end (or broke off)."""
        if self.upstream_sent is not None and self.upstream_done is None:
            self.upstream_done = time.perf_counter()
            if self.trace is not None:
                self.trace.upstream_ended(self.upstream_error)

    def upstream_failed(self, exc: BaseException) -> None:
        self.upstream_error = _FAILURE_KINDS.get(classify_failure(exc).code, "error")
        self.upstream_finished()

    def add_output_time(self, seconds: float) -> None:
        """Time spent in the output stage (streams: added up over the events)."""
        self.output_seconds = (self.output_seconds or 0.0) + seconds
        if self.upstream_sent is not None and self.upstream_done is None:
            self._output_while_upstream += seconds

    def upstream_seconds(self, now: float) -> float | None:
        """Time spent on the upstream, less the output stage work done while its stream was open."""
        if self.upstream_sent is None:
            return None
        done = self.upstream_done if self.upstream_done is not None else now
        return max(0.0, done - self.upstream_sent - self._output_while_upstream)


def request_telemetry(scope: Scope) -> RequestTelemetry:
    """The request's record, or a detached one when metrics are off."""
    record = scope.get(SCOPE_KEY)
    return record if isinstance(record, RequestTelemetry) else RequestTelemetry(None, "passthrough")
