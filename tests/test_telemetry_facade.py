"""``Telemetry.request_finished`` on hand-built reports: the metrics it records and
its access log line. No app, no proxy: the report is the whole interface."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import CollectorRegistry

from guardproxy.telemetry import FailureReport, FindingReport, GuardRunReport, RequestReport, Telemetry, Tracing
from guardproxy.telemetry.logs import ACCESS_LOGGER

STARTED_NS = 1_700_000_000_000_000_000
REDACTED_TEXT = "key [SECRET] please, my diary entry"


def chat_report(**changes: object) -> RequestReport:
    """A guarded chat request that went upstream: an input redaction (the same label
    found twice), a guard that timed out and was bypassed, an output flag."""
    report = RequestReport(
        request_id="abc123000000000001", route="chat", method="POST", path="/v1/chat/completions",
        started=100.0, ended=100.5, status=200, model="GPT-4o-2024-08-06", response_model="gpt-4o-2024-08-06",
        verdict="redacted", policy="testpolicy@0123456789ab", policy_name="testpolicy", chain="default",
        upstream_sent=100.01, upstream_done=100.4, upstream_seconds=0.38, input_seconds=0.01, output_seconds=0.02,
        usage={"input": 9, "output": 3},
        guard_runs=[
            GuardRunReport("keywords", "secrets", "input", "redact", STARTED_NS, 0.001, "ok", 2, ("SECRET",),
                           "redacted"),
            GuardRunReport("pii", "pii", "input", "redact", STARTED_NS, 0.05, "timeout", 0, (), "pass"),
            GuardRunReport("keywords", "promise", "output", "flag", STARTED_NS + 400_000_000, 0.002, "ok", 1,
                           ("promise",), "flagged"),
        ],
        findings=[
            FindingReport("input", "keywords", "secrets", "redact", "enforce", "SECRET"),
            FindingReport("input", "keywords", "secrets", "redact", "enforce", "SECRET"),
            FindingReport("output", "keywords", "promise", "flag", "enforce", "promise"),
        ],
        failures=[FailureReport("input", "pii", "pii", "timeout", False)],
        redacted_texts=[("input", [REDACTED_TEXT])],
    )
    for name, value in changes.items():
        setattr(report, name, value)
    return report


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float:
    value = registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


@pytest.fixture
def access_log() -> Iterator[list[dict[str, object]]]:
    """The access lines, caught by a handler of our own (a second handler also keeps
    ``access_line`` on the ordinary logging path)."""
    lines: list[dict[str, object]] = []

    class Catch(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(json.loads(record.getMessage()))

    logger = logging.getLogger(ACCESS_LOGGER)
    handler, level = Catch(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield lines
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def test_a_guarded_request_is_counted() -> None:
    registry = CollectorRegistry()
    Telemetry(registry).request_finished(chat_report(), None)
    assert sample(registry, "guardproxy_requests_total", route="chat", model="gpt-4o", verdict="redacted",
                  status_code="200") == 1
    assert sample(registry, "guardproxy_request_duration_seconds_sum", route="chat") == pytest.approx(0.5)
    assert sample(registry, "guardproxy_overhead_seconds_sum", route="chat", stage="input") == pytest.approx(0.01)
    assert sample(registry, "guardproxy_overhead_seconds_sum", route="chat", stage="output") == pytest.approx(0.02)
    assert sample(registry, "guardproxy_upstream_duration_seconds_sum", route="chat") == pytest.approx(0.38)
    assert sample(registry, "guardproxy_time_to_first_token_seconds_count", route="chat") == 0  # not streamed
    assert sample(registry, "guardproxy_tokens_total", model="gpt-4o", direction="input") == 9
    assert sample(registry, "guardproxy_tokens_total", model="gpt-4o", direction="output") == 3
    assert sample(registry, "guardproxy_guard_duration_seconds_count", guard="keywords", stage="input") == 1
    assert sample(registry, "guardproxy_guard_duration_seconds_sum", guard="pii", stage="input") == pytest.approx(0.05)
    assert sample(registry, "guardproxy_guard_duration_seconds_count", guard="keywords", stage="output") == 1
    assert sample(registry, "guardproxy_violations_total", policy="testpolicy", chain="default", guard="keywords",
                  stage="input", action="redact", mode="enforce", label="SECRET") == 2  # one per finding
    assert sample(registry, "guardproxy_violations_total", policy="testpolicy", chain="default", guard="keywords",
                  stage="output", action="flag", mode="enforce", label="promise") == 1
    assert sample(registry, "guardproxy_guard_errors_total", guard="pii", stage="input", kind="timeout",
                  outcome="bypassed") == 1
    for kind in ("unreachable", "timeout", "error", "status_429", "status_5xx"):  # present, at zero
        assert registry.get_sample_value("guardproxy_upstream_errors_total", {"kind": kind}) == 0


def test_a_stream_that_broke_upstream() -> None:
    registry = CollectorRegistry()
    report = chat_report(first_content=100.2, upstream_error="error",
                         failures=[FailureReport("output", "pii", "pii", "error", True)])
    Telemetry(registry).request_finished(report, None)
    assert sample(registry, "guardproxy_time_to_first_token_seconds_sum", route="chat") == pytest.approx(0.2)
    assert sample(registry, "guardproxy_upstream_errors_total", kind="error") == 1
    assert sample(registry, "guardproxy_guard_errors_total", guard="pii", stage="output", kind="exception",
                  outcome="blocked") == 1


def test_a_request_without_a_chain_or_an_upstream_call() -> None:
    registry = CollectorRegistry()
    report = RequestReport("r1", "passthrough", "POST", "/v1/files", started=5.0, ended=5.001, status=404,
                           input_seconds=0.001)
    Telemetry(registry).request_finished(report, None)
    assert sample(registry, "guardproxy_requests_total", route="passthrough", model="none", verdict="none",
                  status_code="404") == 1
    assert sample(registry, "guardproxy_overhead_seconds_count", route="passthrough", stage="input") == 1
    assert sample(registry, "guardproxy_overhead_seconds_count", route="passthrough", stage="output") == 0
    assert sample(registry, "guardproxy_upstream_duration_seconds_count", route="passthrough") == 0


def test_finding_labels_are_capped() -> None:
    registry = CollectorRegistry()
    telemetry = Telemetry(registry)
    for i in range(60):
        finding = FindingReport("input", "topics", "topics", "flag", "monitor", f"topic-{i}")
        telemetry.request_finished(chat_report(findings=[finding], failures=[], guard_runs=[]), None)
    labels = {"policy": "testpolicy", "chain": "default", "guard": "topics", "stage": "input", "action": "flag",
              "mode": "monitor"}
    assert sample(registry, "guardproxy_violations_total", **labels, label="topic-49") == 1
    assert sample(registry, "guardproxy_violations_total", **labels, label="other") == 10


def test_the_access_line(access_log: list[dict[str, object]]) -> None:
    Telemetry(CollectorRegistry()).request_finished(chat_report(), None)
    [line] = access_log
    assert line == {
        "request_id": "abc123000000000001", "trace_id": None, "route": "chat", "model": "gpt-4o", "status": 200,
        "verdict": "redacted", "key": None, "fired": ["input:secrets:SECRET", "output:promise:promise"],
        "failed": ["input:pii:timeout"], "latency_ms": 500.0, "upstream_ms": 380.0, "upstream_error": None,
    }
    assert "SECRET]" not in json.dumps(line) and "diary" not in json.dumps(line)  # never the redacted text


def test_the_access_line_carries_the_trace_id(access_log: list[dict[str, object]]) -> None:
    exporter = InMemorySpanExporter()
    telemetry = Telemetry(None, tracing=Tracing(exporter, batch=False))
    request_trace = telemetry.start_trace("POST", "/v1/chat/completions", "chat", [])
    assert request_trace is not None
    telemetry.request_finished(chat_report(), request_trace)
    [span] = [s for s in exporter.get_finished_spans() if s.name.startswith("chat ")]
    assert access_log[0]["trace_id"] == request_trace.trace_id == f"{span.context.trace_id:032x}"


def test_disabled_telemetry_still_writes_the_access_line(access_log: list[dict[str, object]]) -> None:
    telemetry = Telemetry.disabled()
    assert not telemetry.enabled and telemetry.start_trace("POST", "/v1/chat/completions", "chat", []) is None
    telemetry.request_finished(chat_report(upstream_seconds=None, verdict=None), None)
    [line] = access_log
    assert line["verdict"] == "none" and line["upstream_ms"] is None


def test_the_client_key_name_is_a_span_attribute_and_an_access_log_field(
        access_log: list[dict[str, object]]) -> None:
    exporter = InMemorySpanExporter()
    telemetry = Telemetry(None, tracing=Tracing(exporter, batch=False))
    request_trace = telemetry.start_trace("POST", "/v1/chat/completions", "chat", [])
    telemetry.request_finished(chat_report(client_key="team-support"), request_trace)
    [span] = [s for s in exporter.get_finished_spans() if s.name.startswith("chat ")]
    assert span.attributes is not None and span.attributes["guardproxy.client_key"] == "team-support"
    assert access_log[0]["key"] == "team-support"
