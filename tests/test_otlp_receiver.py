"""Traces over the wire: the proxy exports OTLP/HTTP to a tiny receiver on a loopback port."""

from __future__ import annotations

from pathlib import Path

import httpx
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from guardproxy.config import Settings
from guardproxy.http.app import create_app
from tests.conftest import BASIC_POLICY, wait_until
from tests.servers import ThreadedServer


def otlp_receiver(received: list[ExportTraceServiceRequest]) -> Starlette:
    async def traces(request: Request) -> Response:
        export = ExportTraceServiceRequest()
        export.ParseFromString(await request.body())
        received.append(export)
        return Response(ExportTraceServiceResponse().SerializeToString(), media_type="application/x-protobuf")

    return Starlette(routes=[Route("/v1/traces", traces, methods=["POST"])])


def test_spans_arrive_over_otlp_http(upstream_server: ThreadedServer, tmp_path: Path) -> None:
    (tmp_path / "policy.yaml").write_text(BASIC_POLICY)
    received: list[ExportTraceServiceRequest] = []
    with ThreadedServer(otlp_receiver(received)) as receiver:
        environ = {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url, "OTEL_BSP_SCHEDULE_DELAY": "50",
                   "OTEL_SERVICE_NAME": "guardproxy-test"}
        settings = Settings(upstream=upstream_server.url + "/v1", policy=str(tmp_path))
        with ThreadedServer(create_app(settings, environ)) as proxy:
            response = httpx.post(proxy.url + "/v1/chat/completions", timeout=20,
                                  json={"model": "demo", "messages": [{"role": "user", "content": "hello"}]})
            assert response.status_code == 200

            def names() -> set[str]:
                return {span.name for export in received for resource in export.resource_spans
                        for scope in resource.scope_spans for span in scope.spans}

            assert wait_until(lambda: "chat demo" in names() and "guardproxy.proxy.upstream" in names())
    resource = received[0].resource_spans[0].resource
    assert any(a.key == "service.name" and a.value.string_value == "guardproxy-test" for a in resource.attributes)
    spans = [span for export in received for r in export.resource_spans for s in r.scope_spans for span in s.spans]
    server = next(span for span in spans if span.name == "chat demo")
    attributes = {a.key: a.value for a in server.attributes}
    assert attributes["gen_ai.request.model"].string_value == "demo"
    assert attributes["http.response.status_code"].int_value == 200
    assert any(span.name.startswith("guardproxy.guard") and span.parent_span_id == server.span_id for span in spans)
