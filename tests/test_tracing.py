"""Traces: spans through the proxy and the demo upstream, caught by the SDK's in-memory exporter."""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import openai
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import CollectorRegistry

from guardproxy.config import Settings
from guardproxy.demo import DemoRecorder
from guardproxy.http.app import create_app
from guardproxy.telemetry.tracing import Tracing
from tests.conftest import BASIC_POLICY, PII_VALUES, REPO, wait_until
from tests.servers import ThreadedServer

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


@pytest.fixture
def traced(upstream_server: ThreadedServer, tmp_path: Path) -> Iterator[tuple[str, InMemorySpanExporter]]:
    (tmp_path / "policy.yaml").write_text(BASIC_POLICY)
    exporter = InMemorySpanExporter()
    settings = Settings(upstream=upstream_server.url + "/v1", policy=str(tmp_path))
    with ThreadedServer(create_app(settings, {}, span_exporter=exporter)) as server:
        yield server.url, exporter


def spans_named(exporter: InMemorySpanExporter, prefix: str) -> list[ReadableSpan]:
    return [s for s in exporter.get_finished_spans() if s.name.startswith(prefix)]


def server_span(exporter: InMemorySpanExporter) -> ReadableSpan:
    assert wait_until(lambda: len(spans_named(exporter, "chat")) == 1)
    return spans_named(exporter, "chat")[0]


def test_no_tracing_without_endpoint() -> None:
    assert Tracing.from_environment({}) is None


def test_non_streamed_request(traced: tuple[str, InMemorySpanExporter], recorder: DemoRecorder) -> None:
    url, exporter = traced
    reply = base64.b64encode(b"Enjoy guaranteed returns!").decode()
    response = httpx.post(url + "/v1/chat/completions", timeout=20,
                          headers={"traceparent": PARENT, "x-demo-reply-b64": reply},
                          json={"model": "demo",
                                "messages": [{"role": "user", "content": "key sk-abcdefghijklmnopqrstuvwx"}]})
    assert response.status_code == 200
    span = server_span(exporter)
    attributes = dict(span.attributes or {})
    assert span.name == "chat demo"
    assert f"{span.context.trace_id:032x}" == TRACE_ID
    assert span.parent is not None and f"{span.parent.span_id:016x}" == "00f067aa0ba902b7"
    usage = response.json()["usage"]
    assert attributes["gen_ai.operation.name"] == "chat"
    assert attributes["gen_ai.request.model"] == "demo"
    assert attributes["gen_ai.response.model"] == response.json()["model"]
    assert attributes["gen_ai.usage.input_tokens"] == usage["prompt_tokens"]
    assert attributes["gen_ai.usage.output_tokens"] == usage["completion_tokens"]
    assert attributes["http.request.method"] == "POST"
    assert attributes["http.response.status_code"] == 200
    assert attributes["guardproxy.verdict"] == "redacted"
    assert str(attributes["guardproxy.policy"]).startswith("testpolicy@")

    guards = {((s.attributes or {})["guardproxy.stage"], (s.attributes or {})["guardproxy.guard.name"]): s
              for s in spans_named(exporter, "guardproxy.guard")}
    assert all(s.parent is not None and s.parent.span_id == span.context.span_id for s in guards.values())
    secrets = guards["input", "secrets"].attributes or {}
    assert secrets["guardproxy.guard"] == "keywords" and secrets["guardproxy.action"] == "redact"
    assert secrets["guardproxy.verdict"] == "redacted" and secrets["guardproxy.findings.count"] == 1
    assert secrets["guardproxy.findings.labels"] == ("SECRET",)
    promise = guards["output", "promise"].attributes or {}
    assert promise["guardproxy.verdict"] == "flagged" and promise["guardproxy.action"] == "flag"

    upstream = spans_named(exporter, "guardproxy.proxy.upstream")
    assert len(upstream) == 1 and upstream[0].parent is not None
    assert upstream[0].parent.span_id == span.context.span_id
    assert (upstream[0].attributes or {})["http.response.status_code"] == 200
    sent = recorder.last().headers["traceparent"]
    assert sent == f"00-{TRACE_ID}-{upstream[0].context.span_id:016x}-01"


def test_streamed_request_ends_after_last_byte(traced: tuple[str, InMemorySpanExporter]) -> None:
    url, exporter = traced
    client = openai.OpenAI(base_url=url + "/v1", api_key="sk-client", max_retries=0)
    stream = client.chat.completions.create(model="demo", messages=[{"role": "user", "content": "hello there"}],
                                            stream=True, stream_options={"include_usage": True})
    usage = [chunk.usage for chunk in stream if chunk.usage][-1]
    span = server_span(exporter)
    attributes = dict(span.attributes or {})
    assert attributes["gen_ai.usage.input_tokens"] == usage.prompt_tokens
    assert attributes["gen_ai.usage.output_tokens"] == usage.completion_tokens
    assert attributes["guardproxy.verdict"] == "pass"
    upstream = spans_named(exporter, "guardproxy.proxy.upstream")[0]
    output_guards = [s for s in spans_named(exporter, "guardproxy.guard")
                     if (s.attributes or {})["guardproxy.stage"] == "output"]
    assert output_guards
    assert span.end_time is not None and upstream.end_time is not None
    assert span.end_time >= upstream.end_time
    assert all(s.end_time is not None and span.end_time >= s.end_time for s in output_guards)


def _all_span_text(exporter: InMemorySpanExporter) -> str:
    parts = []
    for span in exporter.get_finished_spans():
        parts.append(span.name)
        parts.extend(f"{k}={v}" for k, v in (span.attributes or {}).items())
        for event in span.events:
            parts.append(event.name)
            parts.extend(f"{k}={v}" for k, v in (event.attributes or {}).items())
    return "\n".join(parts)


@pytest.mark.parametrize("content", ["off", "redacted"])
def test_no_pii_value_in_spans_logs_or_metrics(upstream_server: ThreadedServer, caplog: pytest.LogCaptureFixture,
                                               content: str) -> None:
    """The shipped policy redacts these values; none may appear in spans, log lines or /metrics,
    not even with ``trace_content=redacted``, which records the text after redaction."""
    caplog.set_level(logging.DEBUG)
    exporter = InMemorySpanExporter()
    settings = replace(Settings(upstream=upstream_server.url + "/v1", policy=str(REPO / "policies")),
                       trace_content=content)
    values = PII_VALUES
    with ThreadedServer(create_app(settings, {}, registry=CollectorRegistry(), span_exporter=exporter)) as server:
        client = openai.OpenAI(base_url=server.url + "/v1", api_key="sk-client", max_retries=0)
        text = f"I am {values[0]}, email {values[1]}, card {values[2]}, phone {values[3]}, key {values[4]}"
        client.chat.completions.create(model="demo", messages=[{"role": "user", "content": text}])
        list(client.chat.completions.create(model="demo", messages=[{"role": "user", "content": text}],
                                            stream=True))
        exposed = httpx.get(server.url + "/metrics").text
        assert wait_until(lambda: len(spans_named(exporter, "chat")) == 2)
    traced = _all_span_text(exporter)
    assert "EMAIL_ADDRESS" in traced
    if content == "redacted":
        assert "guardproxy.content.redacted" in traced
    else:
        assert "guardproxy.content" not in traced
    logged = "\n".join(record.getMessage() for record in caplog.records)
    for value in values:
        for part in (value, *value.split()):
            if len(part) > 4:
                for where in (traced, logged, exposed):
                    assert part.lower() not in where.lower()
