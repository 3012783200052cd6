"""Audit records as OpenTelemetry log records (``--audit-otlp``), over OTLP/HTTP to a receiver on a loopback port."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from guardproxy.audit.otlp import OtlpAuditLogs, logs_endpoint
from guardproxy.config import Settings
from guardproxy.http.app import create_app
from tests.conftest import wait_until
from tests.servers import ThreadedServer

POLICY = """
version: 1
name: audited
chains:
  default:
    input:
      - {name: watch, guard: keywords, action: flag, terms: [invoice]}
"""


def logs_receiver(received: list[ExportLogsServiceRequest]) -> Starlette:
    async def logs(request: Request) -> Response:
        export = ExportLogsServiceRequest()
        export.ParseFromString(await request.body())
        received.append(export)
        return Response(ExportLogsServiceResponse().SerializeToString(), media_type="application/x-protobuf")

    return Starlette(routes=[Route("/v1/logs", logs, methods=["POST"])])


def test_each_record_arrives_as_a_log_record(upstream_server: ThreadedServer, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_BLRP_SCHEDULE_DELAY", "50")
    (tmp_path / "policy.yaml").write_text(POLICY)
    trail = tmp_path / "audit.jsonl"
    received: list[ExportLogsServiceRequest] = []
    with ThreadedServer(logs_receiver(received)) as receiver:
        settings = Settings(upstream=upstream_server.url + "/v1", policy=str(tmp_path), audit=str(trail),
                            audit_otlp=True)
        with ThreadedServer(create_app(settings, {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url})) as proxy:
            response = httpx.post(proxy.url + "/v1/chat/completions", timeout=20, json={
                "model": "demo", "messages": [{"role": "user", "content": "about the invoice"}]})
            assert response.status_code == 200

            def records() -> list[object]:
                return [record for export in received for resource in export.resource_logs
                        for scope in resource.scope_logs for record in scope.log_records]

            assert wait_until(lambda: len(records()) == 1)
    [record] = records()
    body = json.loads(record.body.string_value)  # type: ignore[attr-defined]
    assert body == json.loads(trail.read_text().splitlines()[0])  # the same record as the file's
    attributes = {a.key: a.value.string_value for a in record.attributes}  # type: ignore[attr-defined]
    assert attributes["guardproxy.verdict"] == "flagged" and attributes["guardproxy.policy"] == "audited"
    assert attributes["guardproxy.request_id"] == body["request_id"]
    assert record.event_name == "guardproxy.audit"  # type: ignore[attr-defined]


def test_the_logs_endpoint_comes_from_the_standard_variables() -> None:
    assert logs_endpoint({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318/"}) == "http://c:4318/v1/logs"
    assert logs_endpoint({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318",
                          "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT": "http://l/x"}) == "http://l/x"
    with pytest.raises(ValueError, match="--audit-otlp needs"):
        OtlpAuditLogs({})


@pytest.mark.parametrize(("flags", "environ", "message"), [
    (["--audit-otlp", "--audit", "AUDIT"], {}, "--audit-otlp needs --audit and OTEL_EXPORTER_OTLP_ENDPOINT"),
    (["--audit-otlp"], {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9"}, "--audit-otlp needs --audit"),
    (["--audit", "AUDIT", "--workers", "2"], {}, "--audit FILE needs --workers 1"),
])
def test_serve_refuses_audit_settings_it_cannot_honour(tmp_path: Path, flags: list[str], environ: dict[str, str],
                                                       message: str) -> None:
    import subprocess
    import sys

    repo = Path(__file__).resolve().parent.parent
    flags = [str(tmp_path / "audit.jsonl") if flag == "AUDIT" else flag for flag in flags]
    result = subprocess.run([sys.executable, "-m", "guardproxy", "serve", "--policy", str(repo / "policies"),
                             "--port", "0", *flags], capture_output=True, text=True, timeout=60,
                            env={"PATH": "", **environ})
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr
