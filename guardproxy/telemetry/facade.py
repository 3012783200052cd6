"""``Telemetry``: the one object through which the proxy reports, built by the
app factory: Prometheus metrics, OpenTelemetry traces (``tracing.py``) and the
access log line (``logs.py``).

It is told about a request twice: ``start_trace`` when it arrives (the trace is
the only live part: the upstream call's span context must go upstream), and
``request_finished`` once, with the plain ``RequestReport``, when the response
has ended. It observes nothing else; guards never see it. With metrics and
traces off (``Telemetry.disabled()``) only the access log line is written.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections import deque
from typing import TYPE_CHECKING, Any

import orjson
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client import multiprocess as prometheus_multiprocess

from guardproxy.telemetry.batch import Batch, observe_all
from guardproxy.telemetry.labels import FINDING_LABEL_LIMIT, MODEL_LIMIT, NONE, LabelCap, normalise_model
from guardproxy.telemetry.logs import BATCHED, NOW, OFF, access_line, access_mode, write_access_lines
from guardproxy.telemetry.metrics import ProxyMetrics
from guardproxy.telemetry.report import RequestReport
from guardproxy.telemetry.tracing import RequestTrace, Tracing

if TYPE_CHECKING:
    from guardproxy.policy import PolicySet

_ERROR_KINDS = {"error": "exception", "timeout": "timeout"}
UPSTREAM_ERROR_KINDS = ("unreachable", "timeout", "error", "incomplete", "bad_stream", "redirect", "status_429",
                        "status_5xx")
UPSTREAM_RETRY_KINDS = ("unreachable", "connect_timeout", "status_502", "status_503")  # proxy/retry.py's
FLUSH_AFTER = 0.05  # seconds a finished request's metrics and access line may wait for their batch
FLUSH_AT = 256  # finished requests that make a batch at once


class Telemetry:
    def __init__(self, registry: CollectorRegistry | None, multiprocess_dir: str | None = None,
                 tracing: Tracing | None = None) -> None:
        """``registry`` None turns metrics off. ``multiprocess_dir`` is prometheus-client's
        ``PROMETHEUS_MULTIPROC_DIR``, shared by all workers, when there are several.
        ``tracing`` None (no OTLP endpoint configured) turns traces off."""
        self.registry = registry
        self.tracing = tracing
        self.multiprocess_dir = multiprocess_dir
        self._pending: deque[tuple[RequestReport, str | None, bool]] = deque()
        self._flush_lock = threading.Lock()
        self._flush_due = False
        if registry is not None:  # first, so that any collection of the registry counts the batch first
            registry.register(_FlushFirst(self))
        self.metrics = ProxyMetrics.register(registry) if registry is not None else None
        self._models = LabelCap(MODEL_LIMIT)
        self._finding_labels = LabelCap(FINDING_LABEL_LIMIT)
        self._policy_series: list[tuple[str, str]] = []
        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}
        self._model_names: dict[str, str] = {}
        if self.metrics is not None:  # series that alerts take increase() of must exist before the first event
            for result in ("ok", "rejected"):
                self.metrics.policy_reloads.labels(result)
            for kind in UPSTREAM_ERROR_KINDS:
                self.metrics.upstream_errors.labels(kind)
            for kind in UPSTREAM_RETRY_KINDS:
                self.metrics.upstream_retries.labels(kind)

    @classmethod
    def disabled(cls) -> Telemetry:
        return cls(None)

    @property
    def enabled(self) -> bool:
        """Whether anything is observed: metrics, traces or both."""
        return self.metrics is not None or self.tracing is not None

    def model_label(self, model: str | None) -> str:
        if model is None:
            return NONE
        label = self._model_names.get(model)
        if label is None:
            name = normalise_model(model)
            label = name if name == NONE else self._models(name)
            if len(self._model_names) < 4 * MODEL_LIMIT:  # client-chosen: bounded
                self._model_names[model] = label
        return label

    def start_trace(self, method: str, path: str, route: str, headers: list[tuple[bytes, bytes]],
                    operation: str | None = None, provider: str | None = None) -> RequestTrace | None:
        """The request's trace (None when tracing is off), child of the client's ``traceparent``;
        ``operation`` and ``provider``: the guarded API's (``Tracing.start_request``)."""
        if self.tracing is None:
            return None
        return self.tracing.start_request(method, path, route, headers, operation, provider)

    def request_finished(self, report: RequestReport, trace: RequestTrace | None) -> None:
        """Once per request, when the response has ended: the trace's remaining spans now;
        the metrics and the access log line in a batch (``flush``) at most ``FLUSH_AFTER``
        seconds or ``FLUSH_AT`` requests later. A batch costs a fraction of the same work
        done request by request: counters are added up per series, histograms per bucket,
        and the lines go out in one write. A scrape flushes first, so it never misses one."""
        trace_id = None
        if trace is not None:
            trace_id = trace.trace_id
            trace.finish(report)
        mode = access_mode()
        if mode == NOW:  # through logging (tests, an embedding application): the line cannot wait
            access_line(self._access_fields(report, trace_id))
        elif self.metrics is None and mode == OFF:
            return
        pending = self._pending
        pending.append((report, trace_id, mode == BATCHED))
        if len(pending) >= FLUSH_AT:
            self.flush()
        elif not self._flush_due:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # no event loop (a test, a script): at once
                self.flush()
                return
            self._flush_due = True
            loop.call_later(FLUSH_AFTER, self._timed_flush)

    def _timed_flush(self) -> None:
        self._flush_due = False
        self.flush()

    def flush(self) -> None:
        """Every finished request not yet counted or logged (``batch.py``). Safe from any
        thread (the metrics listener's collects through ``_FlushFirst``)."""
        pending = self._pending
        if not pending:
            return
        with self._flush_lock:
            lines: list[bytes] = []
            batch = Batch()
            metrics = self.metrics
            while True:
                try:
                    report, trace_id, log = pending.popleft()
                except IndexError:
                    break
                if log:
                    lines.append(orjson.dumps(self._access_fields(report, trace_id)))
                if metrics is not None:
                    batch.add(report)
            if metrics is not None:
                self._count(metrics, batch)
            write_access_lines(lines)

    def _access_fields(self, report: RequestReport, trace_id: str | None) -> dict[str, Any]:
        upstream = report.upstream_seconds
        return {
            "request_id": report.request_id, "trace_id": trace_id, "route": report.route,
            "model": self.model_label(report.model), "status": report.status, "verdict": report.verdict or NONE,
            "key": report.client_key,
            "fired": list(dict.fromkeys(f"{f.stage}:{f.name}:{f.label}" for f in report.findings))
            if report.findings else [],
            "failed": [f"{f.stage}:{f.name}:{f.kind}" for f in report.failures] if report.failures else [],
            "latency_ms": round((report.ended - report.started) * 1000, 2),
            "upstream_ms": None if upstream is None else round(upstream * 1000, 2),
            "upstream_error": report.upstream_error,
        }

    def _count(self, metrics: ProxyMetrics, batch: Batch) -> None:
        child = self._child
        for (route, model, verdict, status, key, refused, upstream_error), requests in batch.requests.items():
            verdict, model, status = verdict or NONE, self.model_label(model), str(status)
            child(metrics.requests, route, model, verdict, status).inc(requests)
            if key is not None:
                child(metrics.client_requests, key, route, verdict, status).inc(requests)
            if status in ("401", "403") and refused:
                child(metrics.auth_failures, route, status).inc(requests)
            if upstream_error is not None:
                child(metrics.upstream_errors, upstream_error).inc(requests)
        for route, (whole, before, after, upstream, first) in batch.times.items():
            observe_all(child(metrics.request_duration, route), whole)
            for amounts, family, labels in ((before, metrics.overhead, (route, "input")),
                                            (after, metrics.overhead, (route, "output")),
                                            (upstream, metrics.upstream_duration, (route,)),
                                            (first, metrics.time_to_first_token, (route,))):
                if amounts:
                    observe_all(child(family, *labels), amounts)
        for (model, direction), tokens in batch.tokens.items():
            child(metrics.tokens, self.model_label(model), direction).inc(tokens)
        for report in batch.rare:
            for kind in report.upstream_retries:
                child(metrics.upstream_retries, kind).inc()
            for run in report.guard_runs:
                child(metrics.guard_duration, run.guard, run.stage).observe(run.seconds)
            policy, chain = report.policy_name or NONE, report.chain or NONE
            for finding in report.findings:
                child(metrics.violations, policy, chain, finding.guard, finding.stage, finding.action, finding.mode,
                      self._finding_labels(finding.label)).inc()
            for failure in report.failures:
                child(metrics.guard_errors, failure.guard, failure.stage, _ERROR_KINDS[failure.kind],
                      "blocked" if failure.blocked else "bypassed").inc()

    def policy_loaded(self, policies: PolicySet) -> None:
        """The policies now in force replace the previous ones in ``guardproxy_policy_info``."""
        if self.metrics is None:
            return
        current = [(item.policy.name, policies.digest) for item in policies.policies]
        for labels in self._policy_series:
            if labels not in current:
                # Zero first: in multiprocess mode a removed series keeps its last value on disk.
                self.metrics.policy_info.labels(*labels).set(0)
                self.metrics.policy_info.remove(*labels)
        for labels in current:
            self.metrics.policy_info.labels(*labels).set(1)
        self._policy_series = current

    def policy_reloaded(self, ok: bool) -> None:
        if self.metrics is not None:
            self.metrics.policy_reloads.labels("ok" if ok else "rejected").inc()

    def _child(self, family: Counter | Histogram, *labels: str) -> Any:
        """``family.labels(*labels)``, remembered: prometheus-client takes a lock and
        builds a key on every call, which adds up at thousands of requests a second.
        Label values are bounded (see labels.py), and so is this cache."""
        key = (id(family), labels)
        child = self._children.get(key)
        if child is None:
            child = family.labels(*labels)
            self._children[key] = child
        return child

    def close(self) -> None:
        """At worker exit: the batch of finished requests, and queued spans; drop this
        process's live gauges from the shared directory."""
        self.flush()
        if self.tracing is not None:
            self.tracing.shutdown()
        if self.multiprocess_dir is not None:
            prometheus_multiprocess.mark_process_dead(os.getpid(), self.multiprocess_dir)  # type: ignore[no-untyped-call]


class _FlushFirst:
    """A collector that yields nothing: collecting the registry (a scrape, a test's
    ``get_sample_value``) flushes the batch of finished requests first."""

    def __init__(self, telemetry: Telemetry) -> None:
        self._telemetry = telemetry

    def describe(self) -> list[Any]:
        return []

    def collect(self) -> list[Any]:
        self._telemetry.flush()
        return []

