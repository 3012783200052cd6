"""One structured JSON log line per request: ids, verdict, what fired, timings; never text."""

from __future__ import annotations

import json
import logging

import pytest

from tests.conftest import RunningProxy

SECRET = "sk-ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"


def access_lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, object]]:
    return [json.loads(r.getMessage()) for r in caplog.records if r.name == "guardproxy.access"]


def test_one_json_line_per_request_without_text(proxy: RunningProxy, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="guardproxy.access")
    client = proxy.client()
    client.chat.completions.create(model="demo", messages=[{"role": "user", "content": f"key {SECRET} please"}],
                                   extra_headers={"x-demo-reply": "We offer guaranteed returns."})
    text = "".join(c.choices[0].delta.content or "" for c in client.chat.completions.create(
        model="demo", messages=[{"role": "user", "content": "hi"}], stream=True) if c.choices)
    assert text
    lines = access_lines(caplog)
    assert len(lines) == 2
    first, second = lines
    assert first["route"] == "chat" and first["status"] == 200 and first["verdict"] == "redacted"
    assert first["fired"] == ["input:secrets:SECRET", "output:promise:promise"]
    assert isinstance(first["latency_ms"], float) and isinstance(first["upstream_ms"], float)
    assert first["trace_id"] is None  # tracing is off without an OTLP endpoint
    assert len(str(first["request_id"])) == 16 and first["request_id"] != second["request_id"]
    assert second["verdict"] == "pass" and second["fired"] == []
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert SECRET not in logged and "sk-client-key" not in logged  # neither the value nor the client's key
