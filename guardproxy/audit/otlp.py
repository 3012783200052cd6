"""Audit records as OpenTelemetry log records (``--audit-otlp``), so a log backend (Loki,
Elasticsearch, a SIEM) can hold the trail. The record's JSON is the body; a few fields are
attributes, for filtering without parsing. Sent in batches over OTLP/HTTP to
``OTEL_EXPORTER_OTLP_LOGS_ENDPOINT`` (or ``OTEL_EXPORTER_OTLP_ENDPOINT`` + ``/v1/logs``)."""

from __future__ import annotations

import json
from collections.abc import Mapping

from opentelemetry._logs import SeverityNumber
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, LogRecordExporter
from opentelemetry.sdk.resources import Resource

EVENT_NAME = "guardproxy.audit"
_ATTRIBUTES = ("request_id", "api", "policy", "policy_version", "chain", "verdict", "client_key")


def logs_endpoint(environ: Mapping[str, str]) -> str | None:
    endpoint = environ.get("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT")
    if endpoint:
        return endpoint
    base = environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    return base.rstrip("/") + "/v1/logs" if base else None


class OtlpAuditLogs:
    def __init__(self, environ: Mapping[str, str], exporter: LogRecordExporter | None = None) -> None:
        if exporter is None:
            endpoint = logs_endpoint(environ)
            if endpoint is None:
                raise ValueError("--audit-otlp needs OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_LOGS_ENDPOINT")
            exporter = OTLPLogExporter(endpoint=endpoint)
        self._provider = LoggerProvider(resource=Resource.create({"service.name": "guardproxy"}))
        self._provider.add_log_record_processor(BatchLogRecordProcessor(exporter))
        self._logger = self._provider.get_logger("guardproxy.audit")

    def emit(self, line: str) -> None:
        record = json.loads(line)
        attributes = {f"guardproxy.{key}": record[key] for key in _ATTRIBUTES if record.get(key) is not None}
        self._logger.emit(body=line, attributes=attributes, event_name=EVENT_NAME,
                          severity_number=SeverityNumber.INFO, severity_text="INFO")

    def close(self) -> None:
        self._provider.shutdown()
