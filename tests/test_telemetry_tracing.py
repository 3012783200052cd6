"""Spans from ``start_trace``, the live upstream calls and a hand-built report,
caught by the SDK's in-memory exporter; and the OTLP exporter the environment asks for."""

from __future__ import annotations

import sys

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from guardproxy.telemetry import RequestReport, Telemetry, Tracing
from guardproxy.telemetry.tracing import exporter_from_environment
from tests.test_telemetry_facade import REDACTED_TEXT, STARTED_NS, chat_report

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CLIENT_SPAN = "00f067aa0ba902b7"
HEADERS = [(b"host", b"proxy"), (b"traceparent", f"00-{TRACE_ID}-{CLIENT_SPAN}-01".encode()),
           (b"authorization", b"Bearer sk-client")]


def traced(content: str = "off") -> tuple[Telemetry, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    return Telemetry(None, tracing=Tracing.from_environment({}, content, exporter)), exporter


def finished(exporter: InMemorySpanExporter) -> dict[str, ReadableSpan]:
    return {span.name: span for span in exporter.get_finished_spans()}


def run_request(telemetry: Telemetry, report: RequestReport) -> str:
    """The proxy's calls for one request; returns the traceparent it would send upstream."""
    request_trace = telemetry.start_trace("POST", report.path, report.route, HEADERS, "chat", "openai")
    assert request_trace is not None
    assert trace.get_current_span() is trace.INVALID_SPAN  # never attached as the current context
    sent = request_trace.upstream_started("POST")["traceparent"]
    request_trace.upstream_answered(200)
    request_trace.upstream_ended(None)
    request_trace.upstream_ended("error")  # a second end changes nothing
    telemetry.request_finished(report, request_trace)
    return sent


def test_request_upstream_and_guard_spans() -> None:
    telemetry, exporter = traced()
    sent = run_request(telemetry, chat_report())
    spans = finished(exporter)
    assert set(spans) == {"chat GPT-4o-2024-08-06", "guardproxy.proxy.upstream", "guardproxy.guard secrets",
                          "guardproxy.guard pii", "guardproxy.guard promise"}
    server = spans["chat GPT-4o-2024-08-06"]
    assert server.kind == SpanKind.SERVER
    assert f"{server.context.trace_id:032x}" == TRACE_ID
    assert server.parent is not None and f"{server.parent.span_id:016x}" == CLIENT_SPAN
    assert dict(server.attributes or {}) == {
        "http.request.method": "POST", "url.path": "/v1/chat/completions", "guardproxy.route": "chat",
        "gen_ai.operation.name": "chat", "guardproxy.api": "chat", "gen_ai.provider.name": "openai",
        "http.response.status_code": 200, "guardproxy.verdict": "redacted",
        "guardproxy.policy": "testpolicy@0123456789ab", "gen_ai.request.model": "GPT-4o-2024-08-06",
        "gen_ai.response.model": "gpt-4o-2024-08-06", "gen_ai.usage.input_tokens": 9,
        "gen_ai.usage.output_tokens": 3,
    }
    assert not server.events  # content mode off
    upstream = spans["guardproxy.proxy.upstream"]
    assert upstream.kind == SpanKind.CLIENT and upstream.parent is not None
    assert upstream.parent.span_id == server.context.span_id
    assert sent == f"00-{TRACE_ID}-{upstream.context.span_id:016x}-01"
    assert dict(upstream.attributes or {}) == {"http.request.method": "POST", "http.response.status_code": 200}
    assert upstream.status.status_code == StatusCode.UNSET
    for name in ("secrets", "pii", "promise"):
        guard = spans["guardproxy.guard " + name]
        assert guard.parent is not None and guard.parent.span_id == server.context.span_id
        assert guard.context.trace_id == server.context.trace_id
        assert server.end_time is not None and guard.end_time is not None and guard.end_time <= server.end_time


def test_guard_spans_are_written_with_the_measured_times() -> None:
    telemetry, exporter = traced()
    run_request(telemetry, chat_report())
    spans = finished(exporter)
    secrets, pii, promise = (spans["guardproxy.guard " + name] for name in ("secrets", "pii", "promise"))
    assert secrets.start_time == STARTED_NS and secrets.end_time == STARTED_NS + 1_000_000
    assert pii.end_time == STARTED_NS + 50_000_000
    assert promise.start_time == STARTED_NS + 400_000_000 and promise.end_time == STARTED_NS + 402_000_000
    assert dict(secrets.attributes or {}) == {
        "guardproxy.guard": "keywords", "guardproxy.guard.name": "secrets", "guardproxy.stage": "input",
        "guardproxy.action": "redact", "guardproxy.verdict": "redacted", "guardproxy.guard.outcome": "ok",
        "guardproxy.findings.count": 2, "guardproxy.findings.labels": ("SECRET",),
    }
    assert secrets.status.status_code == StatusCode.UNSET
    assert (promise.attributes or {})["guardproxy.verdict"] == "flagged"
    assert (pii.attributes or {})["guardproxy.guard.outcome"] == "timeout"
    assert pii.status.status_code == StatusCode.ERROR and pii.status.description == "timeout"


def test_redacted_content_only_in_redacted_mode() -> None:
    for content in ("off", "redacted"):
        telemetry, exporter = traced(content)
        run_request(telemetry, chat_report())
        everything = "\n".join(f"{span.name} {span.attributes} {[(e.name, e.attributes) for e in span.events]}"
                               for span in exporter.get_finished_spans())
        assert "sk-client" not in everything  # headers other than traceparent are never read
        if content == "off":
            assert "diary" not in everything and "guardproxy.content" not in everything
            continue
        [event] = finished(exporter)["chat GPT-4o-2024-08-06"].events
        assert event.name == "guardproxy.content"
        assert dict(event.attributes or {}) == {"guardproxy.stage": "input",
                                                "guardproxy.content.redacted": (REDACTED_TEXT,)}


def test_a_failed_request_without_a_chain() -> None:
    telemetry, exporter = traced()
    request_trace = telemetry.start_trace("GET", "/v1/models", "models", [])
    assert request_trace is not None
    request_trace.upstream_started("GET")  # the proxy never ended it: request_finished does
    report = RequestReport("r2", "models", "GET", "/v1/models", started=1.0, ended=1.2, status=502,
                           upstream_error="unreachable")
    telemetry.request_finished(report, request_trace)
    spans = finished(exporter)
    server = spans["models guardproxy"]
    assert server.parent is None  # no traceparent came in
    attributes = dict(server.attributes or {})
    assert "gen_ai.operation.name" not in attributes and "gen_ai.request.model" not in attributes
    assert attributes["guardproxy.verdict"] == "none" and attributes["error.type"] == "unreachable"
    assert server.status.status_code == StatusCode.ERROR
    upstream = spans["guardproxy.proxy.upstream"]
    assert (upstream.attributes or {})["error.type"] == "unreachable"
    assert upstream.status.status_code == StatusCode.ERROR


def test_exporter_from_environment() -> None:
    assert exporter_from_environment({}) is None
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter

    assert isinstance(exporter_from_environment({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}),
                      HttpExporter)
    with pytest.raises(ValueError, match="http/json is not supported"):
        exporter_from_environment({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x", "OTEL_EXPORTER_OTLP_PROTOCOL":
                                   "http/json"})


def test_grpc_without_its_extra_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "opentelemetry.exporter.otlp.proto.grpc.trace_exporter", None)
    environ = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}
    with pytest.raises(ValueError, match=r"pip install 'guardproxy\[otlp-grpc\]'") as raised:
        Tracing.from_environment(environ)
    assert raised.value.__cause__ is None and raised.value.__suppress_context__


def test_grpc_with_its_extra() -> None:
    grpc = pytest.importorskip("opentelemetry.exporter.otlp.proto.grpc.trace_exporter")
    exporter = exporter_from_environment({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4317",
                                          "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc"})
    assert isinstance(exporter, grpc.OTLPSpanExporter)
    exporter.shutdown()
