"""One proxied request's context, passed explicitly from the front to the handlers,
the relay and the stream guard, and turned into one plain ``RequestReport`` for
telemetry when the response has ended.

It is also where the request's verdict is decided: ``verdict_of`` over every
settled decision of every stage, the same function the engine uses per run.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Sequence
from typing import Protocol

from guardproxy.audit.evidence import RequestEvidence
from guardproxy.engine import ChainResult, Decision, GuardFailure, Verdict, verdict_of
from guardproxy.keys import KeyEntry
from guardproxy.policy import RouteChoice
from guardproxy.proxy.dialects import Dialect
from guardproxy.telemetry.report import FailureReport, FindingReport, GuardRunReport, RequestReport

_ID_PREFIX = os.urandom(3).hex()  # per process, so ids from several workers or restarts do not collide
_ID_COUNTER = itertools.count(1)


def next_request_id() -> str:
    """16 hex characters: 6 random per process, then a counter (a uuid4 per request costs more)."""
    return f"{_ID_PREFIX}{next(_ID_COUNTER) & 0xFFFFFFFFFF:010x}"


class TraceHandle(Protocol):
    """The live part of a request's trace: the upstream call's span, whose context
    must go upstream in ``traceparent`` while the request is still running."""

    def upstream_started(self, method: str) -> dict[str, str]: ...

    def upstream_answered(self, status: int) -> None: ...

    def upstream_ended(self, error: str | None) -> None: ...


class Outcome(Protocol):
    """A settled stage: a chain run's result, or a whole stream's."""

    @property
    def decisions(self) -> Sequence[Decision]: ...

    @property
    def failures(self) -> Sequence[GuardFailure]: ...


class RequestContext:
    __slots__ = ("_decisions", "_failures", "_output_while_upstream", "_verdict", "choice", "client_key", "deployment",
                 "dialect", "evidence", "keep_texts", "report", "trace")

    def __init__(self, route: str, method: str, path: str, dialect: Dialect | None = None,
                 trace: TraceHandle | None = None, keep_texts: bool = False, deployment: str | None = None) -> None:
        self.report = RequestReport(next_request_id(), route, method, path, time.perf_counter())
        self.dialect = dialect
        self.deployment = deployment  # Azure's deployment, which names the model
        self.trace = trace
        self.keep_texts = keep_texts
        self.choice: RouteChoice | None = None
        self.client_key: KeyEntry | None = None  # the caller's key, where a keys file is configured
        self.evidence: RequestEvidence | None = None  # for the audit trail and the shadow policy, when on
        self._decisions: list[Decision] = []
        self._failures: list[GuardFailure] = []
        self._output_while_upstream = 0.0
        self._verdict: Verdict = "pass"  # verdict_of nothing; it changes only in stage_done

    @property
    def verdict(self) -> Verdict:
        return self._verdict

    def routed(self, choice: RouteChoice, model: str | None) -> None:
        self.choice = choice
        report = self.report
        report.model, report.policy, report.policy_name, report.chain = (model, choice.tag, choice.policy.name,
                                                                         choice.chain_name)
        if self.evidence is not None:
            self.evidence.routed(choice.policy)

    def chain_ran(self, result: ChainResult, started_ns: int) -> None:
        """Every engine run, for the guards' timings (a stream has one per release)."""
        actions = {run.name: run.action for run in result.runs}
        for run in result.runs:
            decisions = [d for d in result.decisions if d.name == run.name]
            self.report.guard_runs.append(GuardRunReport(
                run.guard, run.name, result.stage, actions[run.name], started_ns, run.seconds, run.outcome,
                run.findings, tuple(sorted({d.label for d in decisions})), verdict_of(decisions)))
        if self.keep_texts and result.verdict != "blocked" and not result.failures and result.texts:
            self.report.redacted_texts.append((result.stage, list(result.texts)))

    def stage_done(self, stage: str, outcome: Outcome) -> None:
        """A stage's settled decisions and failures (for a stream: the whole stream's)."""
        self._decisions.extend(outcome.decisions)
        self._failures.extend(outcome.failures)
        self._verdict = self.report.verdict = verdict_of(self._decisions, self._failures)
        for d in outcome.decisions:
            if d.segment >= 0 or d.document is not None:  # a failing guard's block is reported as its failure
                self.report.findings.append(FindingReport(stage, d.guard, d.name, d.action, d.mode, d.label))
        self.report.failures.extend(FailureReport(stage, f.guard, f.name, f.kind, f.blocked)
                                    for f in outcome.failures)
        if self.evidence is not None:
            segments = outcome.segments if isinstance(outcome, ChainResult) else None
            streamed = outcome.streamed_segments() if hasattr(outcome, "streamed_segments") else None
            self.evidence.stage(stage, outcome.decisions, outcome.failures, segments, streamed)

    def upstream_sending(self, method: str) -> dict[str, str]:
        """Notes the send; returns the headers (``traceparent``) to add to the upstream request."""
        self.report.upstream_sent = time.perf_counter()
        return self.trace.upstream_started(method) if self.trace is not None else {}

    def upstream_answered(self, status: int) -> None:
        if self.trace is not None:
            self.trace.upstream_answered(status)
        if status == 429:
            self.report.upstream_error = "status_429"
        elif status >= 500:
            self.report.upstream_error = "status_5xx"

    def upstream_finished(self) -> None:
        """The upstream's answer was read to its end (or broke off)."""
        report = self.report
        if report.upstream_sent is not None and report.upstream_done is None:
            report.upstream_done = time.perf_counter()
            if self.trace is not None:
                self.trace.upstream_ended(report.upstream_error)

    def add_output_time(self, seconds: float) -> None:
        """Time spent in the output stage (streams: added up over the events)."""
        report = self.report
        report.output_seconds = (report.output_seconds or 0.0) + seconds
        if report.upstream_sent is not None and report.upstream_done is None:
            self._output_while_upstream += seconds

    def finish(self, status: int) -> RequestReport:
        """The report, complete: called once, when the response has ended."""
        report = self.report
        report.ended = time.perf_counter()
        report.status = status
        report.verdict = self.verdict if self.choice is not None else None
        sent = report.upstream_sent
        report.input_seconds = (sent if sent is not None else report.ended) - report.started
        if sent is not None:
            done = report.upstream_done if report.upstream_done is not None else report.ended
            report.upstream_seconds = max(0.0, done - sent - self._output_while_upstream)
        if self.trace is not None and report.upstream_done is None and sent is not None:
            self.trace.upstream_ended(report.upstream_error)
        return report
