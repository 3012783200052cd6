"""OpenTelemetry traces: one SERVER span per observed request, a CLIENT span for
the upstream call, and a child span per guard run, with the GenAI
semantic-convention attributes where they apply.

Only the upstream span is live: its context must go upstream in ``traceparent``
while the request runs. Everything else is written when the request has ended,
from its ``RequestReport``: the guard spans are created then with the start and
end times the report recorded, under the request span, whose context is passed
explicitly (it is never attached as the current context, so nothing depends on
which task or thread the proxy happens to run in).

Tracing is on only when the operator configures an OTLP endpoint (the standard
``OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT`` variables, read by the app factory from
its environment) or a test hands the factory an exporter. Otherwise no provider
exists and requests do no tracing work at all.

Spans carry labels, names, counts and timings, never prompt or answer text. With
``content="redacted"`` each stage's text *after* the engine's redactions
(``RequestReport.redacted_texts``, kept by the proxy only for stages that settled
without a block or a failing guard) is added as a span event.
"""

from __future__ import annotations

from collections.abc import Mapping

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from guardproxy.telemetry.report import GuardRunReport, RequestReport

TRACE_CONTENT_MODES = ("off", "redacted")
GRPC_EXTRA_HINT = "pip install 'guardproxy[otlp-grpc]'"
_PROPAGATOR = TraceContextTextMapPropagator()
_CARRIED_HEADERS = (b"traceparent", b"tracestate")


def exporter_from_environment(environ: Mapping[str, str]) -> SpanExporter | None:
    """The OTLP exporter the standard variables ask for, or None when no endpoint is set.
    Raises ValueError for an unsupported protocol, or for gRPC without its optional extra."""
    traces_endpoint = environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    endpoint = environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    if not traces_endpoint and not endpoint:
        return None
    protocol = (environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
                or "http/protobuf")
    if protocol == "grpc":
        return _grpc_exporter(traces_endpoint or endpoint or "")
    if protocol != "http/protobuf":
        raise ValueError(f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol} is not supported; use http/protobuf or grpc")
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter

    # The signal-specific variable is the full URL; the generic one is a base the path is added to.
    url = traces_endpoint or f"{(endpoint or '').rstrip('/')}/v1/traces"
    return HttpExporter(endpoint=url)


def _grpc_exporter(endpoint: str) -> SpanExporter:
    """The gRPC exporter lives in the optional ``otlp-grpc`` extra (grpcio is large)."""
    try:
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
    except ImportError as exc:
        raise ValueError(f"OTLP over gRPC (OTEL_EXPORTER_OTLP_[TRACES_]PROTOCOL=grpc) needs the gRPC exporter, "
                         f"which is not installed ({exc}): {GRPC_EXTRA_HINT}, or use http/protobuf") from None
    return GrpcExporter(endpoint=endpoint)


class Tracing:
    """The app's own tracer provider (never the process-wide one, so several apps
    can live in one process), built by the app factory."""

    def __init__(self, exporter: SpanExporter, content: str = "off", batch: bool = True,
                 schedule_delay_ms: float = 5000, service_name: str = "guardproxy") -> None:
        if content not in TRACE_CONTENT_MODES:
            raise ValueError(f"trace_content must be one of {', '.join(TRACE_CONTENT_MODES)}, not {content!r}")
        self.content = content
        self.provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
        processor = (BatchSpanProcessor(exporter, schedule_delay_millis=schedule_delay_ms) if batch
                     else SimpleSpanProcessor(exporter))
        self.provider.add_span_processor(processor)
        self.tracer = self.provider.get_tracer("guardproxy")

    @classmethod
    def from_environment(cls, environ: Mapping[str, str], content: str = "off",
                         exporter: SpanExporter | None = None) -> Tracing | None:
        """An exporter given (tests) is used synchronously; one from the environment in batches."""
        if exporter is not None:
            return cls(exporter, content, batch=False)
        exporter = exporter_from_environment(environ)
        if exporter is None:
            return None
        delay = float(environ.get("OTEL_BSP_SCHEDULE_DELAY") or 5000)
        return cls(exporter, content, schedule_delay_ms=delay,
                   service_name=environ.get("OTEL_SERVICE_NAME") or "guardproxy")

    def start_request(self, method: str, path: str, route: str, headers: list[tuple[bytes, bytes]],
                      operation: str | None = None, provider: str | None = None) -> RequestTrace:
        """Opens the request's SERVER span, child of the client's ``traceparent`` if it sent one.
        ``operation`` and ``provider`` (OpenTelemetry's ``gen_ai.operation.name`` and
        ``gen_ai.provider.name``) come from the dialect of a guarded API, whose name ``route`` is."""
        carrier = {name.decode("latin-1"): value.decode("latin-1") for name, value in headers
                   if name.lower() in _CARRIED_HEADERS}
        attributes: dict[str, str] = {"http.request.method": method, "url.path": path, "guardproxy.route": route}
        if operation:
            attributes["gen_ai.operation.name"] = operation
        if provider is not None:
            attributes["guardproxy.api"] = route
            attributes["gen_ai.provider.name"] = provider
        span = self.tracer.start_span(f"{operation or route} guardproxy", _PROPAGATOR.extract(carrier),
                                      SpanKind.SERVER, attributes=attributes)
        return RequestTrace(self, span, operation)

    def shutdown(self) -> None:
        """Flushes spans still queued for export."""
        self.provider.shutdown()


class RequestTrace:
    """One request's spans. The proxy drives the upstream span live; the rest is
    written by ``finish`` from the request's report."""

    __slots__ = ("_context", "_operation", "_tracing", "_upstream", "span")

    def __init__(self, tracing: Tracing, span: Span, operation: str | None) -> None:
        self._tracing = tracing
        self.span = span
        self._operation = operation
        self._context = trace.set_span_in_context(span)  # the parent of every other span
        self._upstream: Span | None = None

    @property
    def trace_id(self) -> str:
        return format(self.span.get_span_context().trace_id, "032x")

    def upstream_started(self, method: str) -> dict[str, str]:
        """Opens the upstream span; returns the ``traceparent`` headers that make it the upstream's parent."""
        self._upstream = self._tracing.tracer.start_span("guardproxy.proxy.upstream", self._context, SpanKind.CLIENT,
                                                         attributes={"http.request.method": method})
        carrier: dict[str, str] = {}
        _PROPAGATOR.inject(carrier, trace.set_span_in_context(self._upstream))
        return carrier

    def upstream_answered(self, status: int) -> None:
        if self._upstream is not None:
            self._upstream.set_attribute("http.response.status_code", status)

    def upstream_ended(self, error: str | None) -> None:
        """Ends the upstream span; later calls do nothing."""
        upstream, self._upstream = self._upstream, None
        if upstream is None:
            return
        if error is not None:
            upstream.set_attribute("error.type", error)
            upstream.set_status(Status(StatusCode.ERROR, error))
        upstream.end()

    def finish(self, report: RequestReport) -> None:
        """When the response has ended (streams: after the last byte): the guard spans,
        the content events, the request span's final attributes, and its end."""
        self.upstream_ended(report.upstream_error)
        for run in report.guard_runs:
            self._guard_span(run)
        span = self.span
        if self._tracing.content == "redacted":
            for stage, texts in report.redacted_texts:
                span.add_event("guardproxy.content", {"guardproxy.stage": stage, "guardproxy.content.redacted": texts})
        if self._operation and report.model:
            span.update_name(f"{self._operation} {report.model}")
        attributes: dict[str, str | int] = {
            "http.response.status_code": report.status,
            "guardproxy.verdict": report.verdict or "none",
        }
        if report.policy:
            attributes["guardproxy.policy"] = report.policy
        if report.client_key:
            attributes["guardproxy.client_key"] = report.client_key
        if report.model:
            attributes["gen_ai.request.model"] = report.model
        if report.response_model:
            attributes["gen_ai.response.model"] = report.response_model
        for direction, count in report.usage.items():
            attributes[f"gen_ai.usage.{direction}_tokens"] = count
        if report.upstream_error is not None:
            attributes["error.type"] = report.upstream_error
        span.set_attributes(attributes)
        if report.status >= 500:
            span.set_status(Status(StatusCode.ERROR))
        span.end()

    def _guard_span(self, run: GuardRunReport) -> None:
        """One guard's run, written after the fact with the times it was measured at."""
        span = self._tracing.tracer.start_span("guardproxy.guard " + run.name, self._context,
                                               start_time=run.started_ns, attributes={
            "guardproxy.guard": run.guard, "guardproxy.guard.name": run.name, "guardproxy.stage": run.stage,
            "guardproxy.action": run.action, "guardproxy.verdict": run.verdict,
            "guardproxy.guard.outcome": run.outcome, "guardproxy.findings.count": run.findings,
            "guardproxy.findings.labels": run.labels,
        })
        if run.outcome != "ok":
            span.set_status(Status(StatusCode.ERROR, run.outcome))
        span.end(run.started_ns + int(run.seconds * 1e9))
