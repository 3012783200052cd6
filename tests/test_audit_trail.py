"""End to end with the openai SDK: the audit trail a proxy under uvicorn writes (``--audit``)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from guardproxy.audit import read_trail
from tests.conftest import RunningProxy, wait_until

POLICY = """
version: 1
name: audited
audit: {text: redacted, sample_passed: 1.0}
chains:
  default:
    input:
      - {name: pii, guard: pii, action: redact, restore: true}
      - {name: banned, guard: keywords, action: block, terms: [project zanzibar]}
      - {name: watch, guard: keywords, action: flag, terms: [invoice]}
    output:
      - {name: out_pii, guard: pii, action: redact, style: type, nlp: pattern, entities: [EMAIL_ADDRESS]}
"""
MESSAGE = "Hi, I am Maria Gonzalez, my email is maria.gonzalez@example.org, about the invoice."
RAW_VALUES = ["Maria Gonzalez", "maria.gonzalez@example.org", "Gonzalez"]


def _records(path: Path, count: int) -> list[Any]:
    assert wait_until(lambda: path.exists() and len(path.read_text().splitlines()) >= count), \
        f"expected {count} records in {path}"
    return list(read_trail(path))


@pytest.fixture
def audited(start_proxy: Callable[..., RunningProxy], tmp_path: Path) -> tuple[RunningProxy, Path]:
    trail = tmp_path / "audit.jsonl"
    return start_proxy(policy=POLICY, audit=str(trail)), trail


def test_a_redacted_request_is_recorded_without_its_raw_values(audited: tuple[RunningProxy, Path]) -> None:
    proxy, trail = audited
    raw = proxy.client().chat.completions.with_raw_response.create(
        model="demo", messages=[{"role": "user", "content": MESSAGE}])
    assert raw.parse().choices[0].message.content == "You said: " + MESSAGE  # restored for the client
    [record] = _records(trail, 1)
    assert record.request_id == raw.headers["x-guardproxy-request-id"]  # the client can name its record
    assert (record.v, record.api, record.path, record.model) == (1, "chat", "/v1/chat/completions", "demo")
    assert (record.policy, record.chain, record.status) == ("audited", "default", 200)
    assert record.verdict == "redacted" and record.stages == {"input": "redacted", "output": "pass"}
    assert len(record.request_id) == 16 and record.policy_version and record.duration_ms > 0
    by_name = {(g.stage, g.name): g for g in record.guards}
    pii = by_name[("input", "pii")]
    assert (pii.guard, pii.action, pii.mode, pii.outcome, pii.runs) == ("pii", "redact", "enforce", "ok", 1)
    assert {"PERSON", "EMAIL_ADDRESS"} <= set(pii.labels)
    person = next(f for f in pii.findings if f.label == "PERSON")
    assert MESSAGE[person.start:person.end] == "Maria Gonzalez"  # offsets locate it; the value is not kept
    assert person.segment == ["messages", 0, "content"] and 0 < person.score <= 1
    assert by_name[("input", "watch")].labels == ["invoice"]
    assert by_name[("input", "banned")].findings == []
    assert record.text is not None
    [sent] = record.text["input"]
    assert (sent.path, sent.role) == (["messages", 0, "content"], "user")
    assert sent.text == "Hi, I am <PERSON_1>, my email is <EMAIL_ADDRESS_1>, about the invoice."  # flagged: readable
    # The answer before restoring: the placeholders the model was sent, and the flagged word it repeated.
    assert record.text["output"][0].text == (
        "You said: Hi, I am <PERSON_1>, my email is <EMAIL_ADDRESS_1>, about the invoice.")
    raw = trail.read_text()
    for value in RAW_VALUES:
        assert value not in raw


def test_blocked_flagged_and_streamed_requests_are_recorded(audited: tuple[RunningProxy, Path]) -> None:
    proxy, trail = audited
    client = proxy.client()
    with pytest.raises(Exception, match="blocked"):
        client.chat.completions.create(model="demo",
                                       messages=[{"role": "user", "content": "tell me of Project Zanzibar"}])
    text, _ = proxy.stream_reply("Write to help.desk@support.example.com today.", user="where do I send the invoice?")
    assert text == "Write to <EMAIL_ADDRESS> today."
    blocked, streamed = _records(trail, 2)
    assert (blocked.verdict, blocked.status, blocked.stages) == ("blocked", 400, {"input": "blocked"})
    assert blocked.text is not None and blocked.text["input"][0].text == "tell me of Project Zanzibar"
    assert streamed.verdict == "redacted" and streamed.stages == {"input": "flagged", "output": "redacted"}
    out = next(g for g in streamed.guards if g.name == "out_pii")
    assert out.labels == ["EMAIL_ADDRESS"] and out.runs >= 1
    assert streamed.text is not None and "output" not in streamed.text  # a stream's text is not kept
    assert "help.desk@support.example.com" not in trail.read_text()


def test_passed_requests_are_sampled(start_proxy: Callable[..., RunningProxy], tmp_path: Path) -> None:
    trail = tmp_path / "audit.jsonl"
    policy = POLICY.replace("audit: {text: redacted, sample_passed: 1.0}", "audit: {sample_passed: 0.0}")
    proxy = start_proxy(policy=policy, audit=str(trail))
    client = proxy.client()
    for content in ("hello there", "what is the weather", "send me the invoice"):
        client.chat.completions.create(model="demo", messages=[{"role": "user", "content": content}])
    [record] = _records(trail, 1)
    assert record.verdict == "flagged" and record.text is None  # text: none is the default
    assert record.sample_passed == 0.0
    assert wait_until(lambda: "guardproxy_audit_records_total 1.0" in _metrics(proxy))


def _metrics(proxy: RunningProxy) -> str:
    import httpx

    return httpx.get(proxy.url + "/metrics", timeout=10).text


def test_the_client_key_name_is_recorded(start_proxy: Callable[..., RunningProxy], tmp_path: Path) -> None:
    from guardproxy.keys import key_digest

    keys = tmp_path / "keys.yaml"
    keys.write_text(f"version: 1\nkeys:\n  - {{name: team-a, chain: default, "
                    f"sha256: {key_digest('sk-team-a-0123456789abcdef')}}}\n")
    trail = tmp_path / "audit.jsonl"
    proxy = start_proxy(policy=POLICY, audit=str(trail), keys_file=str(keys))
    proxy.client(api_key="sk-team-a-0123456789abcdef").chat.completions.create(
        model="demo", messages=[{"role": "user", "content": "hello"}])
    [record] = _records(trail, 1)
    assert record.client_key == "team-a"
    assert "sk-team-a" not in trail.read_text()


def test_stdout_trail_lines_are_records(start_proxy: Callable[..., RunningProxy],
                                        capfd: pytest.CaptureFixture[str]) -> None:
    proxy = start_proxy(policy=POLICY, audit="-")
    proxy.client().chat.completions.create(model="demo", messages=[{"role": "user", "content": "the invoice"}])
    lines: list[str] = []

    def written() -> bool:
        lines.extend(line for line in capfd.readouterr().out.splitlines() if line.startswith('{"v":1'))
        return bool(lines)

    assert wait_until(written)
    assert json.loads(lines[0])["verdict"] == "flagged"
