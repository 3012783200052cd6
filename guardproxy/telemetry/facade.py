"""``Telemetry``: the one object through which the proxy reports, built by the
app factory: Prometheus metrics and OpenTelemetry traces (``tracing.py``).

It observes the engine's results and the proxy's request records; guards never
see it. With metrics and traces off (``Telemetry.disabled()``) every call is a no-op.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client import multiprocess as prometheus_multiprocess

from guardproxy.engine.core import ChainResult
from guardproxy.policy import PolicySet, RouteChoice
from guardproxy.proxy.decisions import Outcome
from guardproxy.telemetry.labels import FINDING_LABEL_LIMIT, MODEL_LIMIT, NONE, LabelCap, normalise_model
from guardproxy.telemetry.logs import access_line
from guardproxy.telemetry.metrics import ProxyMetrics
from guardproxy.telemetry.record import RequestTelemetry
from guardproxy.telemetry.response_watch import ResponseWatch
from guardproxy.telemetry.tracing import Tracing

_ERROR_KINDS = {"error": "exception", "timeout": "timeout"}
UPSTREAM_ERROR_KINDS = ("unreachable", "timeout", "error", "status_429", "status_5xx")


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

    def observe_run(self, result: ChainResult, started_ns: int = 0, actions: Mapping[str, str] | None = None) -> None:
        """Every engine run: how long each guard took (``started_ns``: wall clock at the run's start)."""
        if self.tracing is not None:
            self.tracing.observe_run(result, started_ns or time.time_ns(), actions or {})
        if self.metrics is None:
            return
        for run in result.runs:
            self._child(self.metrics.guard_duration, run.guard, result.stage).observe(run.seconds)

    def observe_stage(self, choice: RouteChoice, outcome: Outcome, stage: str) -> None:
        """A finished stage: one count per finding, one per guard failure."""
        if self.metrics is None:
            return
        policy, chain = choice.policy.name, choice.chain_name
        for d in outcome.decisions:
            if d.segment < 0:  # the block a failing guard caused, counted as a guard error below
                continue
            self._child(self.metrics.violations, policy, chain, d.guard, stage, d.action, d.mode,
                        self._finding_labels(d.label)).inc()
        for f in outcome.failures:
            self.metrics.guard_errors.labels(f.guard, stage, _ERROR_KINDS[f.kind],
                                             "blocked" if f.blocked else "bypassed").inc()

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

    def request_finished(self, record: RequestTelemetry, status: int, watch: ResponseWatch) -> None:
        ended = time.perf_counter()
        trace_id = None
        if record.trace is not None:
            trace_id = format(record.trace.span.get_span_context().trace_id, "032x")
            record.trace.finish(record, status, watch)
        upstream = record.upstream_seconds(ended)
        verdict = record.verdict or watch.verdict or NONE
        model = self.model_label(record.model)
        access_line({
            "request_id": record.request_id, "trace_id": trace_id, "route": record.route,
            "model": model, "status": status, "verdict": verdict, "fired": record.fired, "failed": record.failed,
            "latency_ms": round((ended - record.started) * 1000, 2),
            "upstream_ms": None if upstream is None else round(upstream * 1000, 2),
            "upstream_error": record.upstream_error,
        })
        metrics = self.metrics
        if metrics is None:
            return
        route = record.route
        child = self._child
        child(metrics.requests, route, model, verdict, str(status)).inc()
        child(metrics.request_duration, route).observe(ended - record.started)
        sent = record.upstream_sent
        child(metrics.overhead, route, "input").observe((sent if sent is not None else ended) - record.started)
        if record.output_seconds is not None:
            child(metrics.overhead, route, "output").observe(record.output_seconds)
        if upstream is not None:
            child(metrics.upstream_duration, route).observe(upstream)
        if record.upstream_error is not None:
            child(metrics.upstream_errors, record.upstream_error).inc()
        if watch.first_content is not None:
            child(metrics.time_to_first_token, route).observe(watch.first_content - record.started)
        for direction, count in watch.usage.items():
            child(metrics.tokens, model, direction).inc(count)

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
