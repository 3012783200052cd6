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

import os
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client import multiprocess as prometheus_multiprocess

from guardproxy.telemetry.labels import FINDING_LABEL_LIMIT, MODEL_LIMIT, NONE, LabelCap, normalise_model
from guardproxy.telemetry.logs import access_line
from guardproxy.telemetry.metrics import ProxyMetrics
from guardproxy.telemetry.report import RequestReport
from guardproxy.telemetry.tracing import RequestTrace, Tracing

if TYPE_CHECKING:
    from guardproxy.policy import PolicySet

_ERROR_KINDS = {"error": "exception", "timeout": "timeout"}
UPSTREAM_ERROR_KINDS = ("unreachable", "timeout", "error", "incomplete", "bad_stream", "redirect", "status_429",
                        "status_5xx")
UPSTREAM_RETRY_KINDS = ("unreachable", "connect_timeout", "status_502", "status_503")  # proxy/retry.py's


class Telemetry:
    def __init__(self, registry: CollectorRegistry | None, multiprocess_dir: str | None = None,
                 tracing: Tracing | None = None) -> None:
        """``registry`` None turns metrics off. ``multiprocess_dir`` is prometheus-client's
        ``PROMETHEUS_MULTIPROC_DIR``, shared by all workers, when there are several.
        ``tracing`` None (no OTLP endpoint configured) turns traces off."""
        self.registry = registry
        self.tracing = tracing
        self.multiprocess_dir = multiprocess_dir
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

    def start_trace(self, method: str, path: str, route: str,
                    headers: list[tuple[bytes, bytes]]) -> RequestTrace | None:
        """The request's trace (None when tracing is off), child of the client's ``traceparent``."""
        if self.tracing is None:
            return None
        return self.tracing.start_request(method, path, route, headers)

    def request_finished(self, report: RequestReport, trace: RequestTrace | None) -> None:
        """Once per request, when the response has ended: the trace's remaining spans,
        the access log line, and the metrics."""
        trace_id = None
        if trace is not None:
            trace_id = trace.trace_id
            trace.finish(report)
        verdict = report.verdict or NONE
        model = self.model_label(report.model)
        latency = report.ended - report.started
        upstream = report.upstream_seconds
        access_line({
            "request_id": report.request_id, "trace_id": trace_id, "route": report.route,
            "model": model, "status": report.status, "verdict": verdict, "key": report.client_key,
            "fired": list(dict.fromkeys(f"{f.stage}:{f.name}:{f.label}" for f in report.findings))
            if report.findings else [],
            "failed": [f"{f.stage}:{f.name}:{f.kind}" for f in report.failures] if report.failures else [],
            "latency_ms": round(latency * 1000, 2),
            "upstream_ms": None if upstream is None else round(upstream * 1000, 2),
            "upstream_error": report.upstream_error,
        })
        if self.metrics is not None:
            self._count(self.metrics, report, model, verdict, latency)

    def _count(self, metrics: ProxyMetrics, report: RequestReport, model: str, verdict: str, latency: float) -> None:
        route = report.route
        child = self._child
        child(metrics.requests, route, model, verdict, str(report.status)).inc()
        if report.client_key is not None:
            child(metrics.client_requests, report.client_key, route, verdict, str(report.status)).inc()
        if report.status in (401, 403) and report.auth_refused:
            child(metrics.auth_failures, route, str(report.status)).inc()
        child(metrics.request_duration, route).observe(latency)
        if report.input_seconds is not None:
            child(metrics.overhead, route, "input").observe(report.input_seconds)
        if report.output_seconds is not None:
            child(metrics.overhead, route, "output").observe(report.output_seconds)
        if report.upstream_seconds is not None:
            child(metrics.upstream_duration, route).observe(report.upstream_seconds)
        if report.upstream_error is not None:
            child(metrics.upstream_errors, report.upstream_error).inc()
        for kind in report.upstream_retries:
            child(metrics.upstream_retries, kind).inc()
        if report.first_content is not None:
            child(metrics.time_to_first_token, route).observe(report.first_content - report.started)
        for direction, count in report.usage.items():
            child(metrics.tokens, model, direction).inc(count)
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
        """At worker exit: flush queued spans; drop this process's live gauges from the shared directory."""
        if self.tracing is not None:
            self.tracing.shutdown()
        if self.multiprocess_dir is not None:
            prometheus_multiprocess.mark_process_dead(os.getpid(), self.multiprocess_dir)  # type: ignore[no-untyped-call]
