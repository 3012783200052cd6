"""OpenTelemetry traces: one SERVER span per observed request, a child span per
guard run and one for the upstream call, with the GenAI semantic-convention
attributes where they apply.

Tracing is on only when the operator configures an OTLP endpoint (the standard
``OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT`` variables, read by the app factory from
its environment) or a test hands the factory an exporter. Otherwise no provider
exists and requests do no tracing work at all.

Spans carry labels, names, counts and timings, never prompt or answer text. With
``trace_content="redacted"`` a stage's text *after* the engine's redactions is
added as a span event, and only when the stage settled without a block or a
failing guard (either can leave text unredacted).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from starlette.types import Scope

from guardproxy.engine.core import ChainResult

if TYPE_CHECKING:
    from guardproxy.telemetry.record import RequestTelemetry
    from guardproxy.telemetry.response_watch import ResponseWatch

TRACE_CONTENT_MODES = ("off", "redacted")
OPERATIONS = {"chat": "chat", "completions": "text_completion", "embeddings": "embeddings"}
_PROPAGATOR = TraceContextTextMapPropagator()
_VERDICT_OF_ACTION = {"block": "blocked", "redact": "redacted"}


def exporter_from_environment(environ: Mapping[str, str]) -> SpanExporter | None:
    """The OTLP exporter the standard variables ask for, or None when no endpoint is set."""
    traces_endpoint = environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    endpoint = environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    if not traces_endpoint and not endpoint:
        return None
    protocol = (environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
                or "http/protobuf")
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter

        return GrpcExporter(endpoint=traces_endpoint or endpoint)
    if protocol != "http/protobuf":
        raise ValueError(f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol} is not supported; use http/protobuf or grpc")
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter

    # The signal-specific variable is the full URL; the generic one is a base the path is added to.
    url = traces_endpoint or f"{(endpoint or '').rstrip('/')}/v1/traces"
    return HttpExporter(endpoint=url)


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

    def start_request(self, scope: Scope, route: str) -> RequestTrace:
        carrier = {name.decode("latin-1"): value.decode("latin-1") for name, value in scope.get("headers", [])
                   if name in (b"traceparent", b"tracestate")}
        parent = _PROPAGATOR.extract(carrier)
        operation = OPERATIONS.get(route)
        method = scope.get("method", "")
        span = self.tracer.start_span(f"{operation or route} guardproxy", parent, SpanKind.SERVER, attributes={
            "http.request.method": method, "url.path": scope["path"], "guardproxy.route": route,
            **({"gen_ai.operation.name": operation} if operation else {})})
        return RequestTrace(self, span, operation)

    def observe_run(self, result: ChainResult, started_ns: int, actions: Mapping[str, str]) -> None:
        """One child span per guard run of this chain run, under the request's span."""
        for run in result.runs:
            decisions = [d for d in result.decisions if d.name == run.name]
            verdict = "pass"
            if any(d.enforced and d.action == "block" for d in decisions):
                verdict = "blocked"
            elif any(d.enforced and d.action == "redact" for d in decisions):
                verdict = "redacted"
            elif decisions:
                verdict = "flagged"
            span = self.tracer.start_span("guardproxy.guard " + run.name, start_time=started_ns, attributes={
                "guardproxy.guard": run.guard, "guardproxy.guard.name": run.name, "guardproxy.stage": result.stage,
                "guardproxy.action": actions.get(run.name, ""), "guardproxy.verdict": verdict,
                "guardproxy.guard.outcome": run.outcome, "guardproxy.findings.count": run.findings,
                "guardproxy.findings.labels": sorted({d.label for d in decisions}),
            })
            if run.outcome != "ok":
                span.set_status(Status(StatusCode.ERROR, run.outcome))
            span.end(started_ns + int(run.seconds * 1e9))
        if self.content == "redacted" and result.verdict != "blocked" and not result.failures and result.texts:
            trace.get_current_span().add_event("guardproxy.content", {
                "guardproxy.stage": result.stage, "guardproxy.content.redacted": list(result.texts)})

    def shutdown(self) -> None:
        """Flushes spans still queued for export."""
        self.provider.shutdown()


class RequestTrace:
    """One request's spans. The request span is the current span while the app
    handles the request, so the engine's guard spans find their parent."""

    def __init__(self, tracing: Tracing, span: Span, operation: str | None) -> None:
        self._tracing = tracing
        self.span = span
        self._operation = operation
        self._token = otel_context.attach(trace.set_span_in_context(span))
        self._upstream: Span | None = None

    def upstream_started(self, method: str) -> dict[str, str]:
        """Opens the upstream span; returns the ``traceparent`` headers that make it the upstream's parent."""
        self._upstream = self._tracing.tracer.start_span("guardproxy.proxy.upstream", kind=SpanKind.CLIENT,
                                                         attributes={"http.request.method": method})
        carrier: dict[str, str] = {}
        _PROPAGATOR.inject(carrier, trace.set_span_in_context(self._upstream))
        return carrier

    def upstream_answered(self, status: int) -> None:
        if self._upstream is not None:
            self._upstream.set_attribute("http.response.status_code", status)

    def upstream_ended(self, error: str | None) -> None:
        upstream, self._upstream = self._upstream, None
        if upstream is None:
            return
        if error is not None:
            upstream.set_attribute("error.type", error)
            upstream.set_status(Status(StatusCode.ERROR, error))
        upstream.end()

    def finish(self, record: RequestTelemetry, status: int, watch: ResponseWatch) -> None:
        """When the response ended (streams: after the last byte)."""
        self.upstream_ended(record.upstream_error)
        span = self.span
        if self._operation and record.model:
            span.update_name(f"{self._operation} {record.model}")
        attributes: dict[str, str | int] = {
            "http.response.status_code": status,
            "guardproxy.verdict": record.verdict or watch.verdict or "none",
        }
        if watch.policy:
            attributes["guardproxy.policy"] = watch.policy
        if record.model:
            attributes["gen_ai.request.model"] = record.model
        if watch.response_model:
            attributes["gen_ai.response.model"] = watch.response_model
        for direction, count in watch.usage.items():
            attributes[f"gen_ai.usage.{direction}_tokens"] = count
        if record.upstream_error is not None:
            attributes["error.type"] = record.upstream_error
        span.set_attributes(attributes)
        if status >= 500:
            span.set_status(Status(StatusCode.ERROR))
        span.end()
        otel_context.detach(self._token)

