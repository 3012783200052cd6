"""The version-1 audit record: what it holds, that it reads back as written, and what it refuses."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from guardproxy.audit import (
    AuditRecord,
    FindingRecord,
    GuardRecord,
    RecordError,
    ShadowRecord,
    TextRecord,
    parse_record,
    read_trail,
)


def sample_record(request_id: str = "r1", verdict: str = "redacted") -> AuditRecord:
    pii = GuardRecord("input", "pii", "pii", "redact", "enforce", "ok", 0.012, 1, ["PERSON"],
                      [FindingRecord("PERSON", 0.85, ["messages", 0, "content"], 9, 23)])
    shadow = ShadowRecord("next", "0123456789ab", "default", "blocked", {"input": "blocked"},
                          [GuardRecord("input", "keywords", "fruit", "block", "enforce", "ok", 0.0001, 1, ["banana"],
                                       [FindingRecord("banana", 1.0, ["messages", 0, "content"], 0, 6)])])
    return AuditRecord(
        time="2026-12-03T09:00:00.125Z", request_id=request_id, trace_id="0af7651916cd43dd8448eb211c80319c",
        api="chat", path="/v1/chat/completions", model="gpt-4o-mini", client_key="team-a", policy="default",
        policy_version="a1b2c3d4e5f6", chain="default", status=200, verdict=verdict,
        stages={"input": verdict, "output": "pass"}, duration_ms=41.5, guards=[pii],
        text={"input": [TextRecord(["messages", 0, "content"], "user", "Hi, I am <PERSON_1>")]}, shadow=shadow)


def test_a_record_reads_back_as_written_with_the_version_first() -> None:
    record = sample_record()
    line = record.to_json()
    assert line.startswith('{"v":1,') and "\n" not in line
    assert parse_record(line) == record


def test_a_record_without_a_sampling_rate_was_written_at_one() -> None:
    body = json.loads(sample_record().to_json())
    assert body["sample_passed"] == 1.0
    del body["sample_passed"]
    assert parse_record(json.dumps(body)).sample_passed == 1.0


def test_keys_a_later_writer_adds_are_kept() -> None:
    body = json.loads(sample_record().to_json())
    body["later_field"] = {"x": 1}
    record = parse_record(json.dumps(body))
    assert record.extra == {"later_field": {"x": 1}}
    assert json.loads(record.to_json())["later_field"] == {"x": 1}


@pytest.mark.parametrize(("change", "problem"), [
    ({"v": 2}, "version 2"),
    ({"verdict": "maybe"}, "verdict 'maybe'"),
    ({"status": "200"}, "'status' has the wrong type"),
    ({"guards": [{"stage": "input"}]}, "missing 'findings'"),
    ({"stages": {"middle": "pass"}}, "'stages' must map"),
    ({"text": {"input": [{"path": ["m"], "text": 3}]}}, "'text' has the wrong type"),
    ({"client_key": 7}, "'client_key' must be a string"),
    ({"sample_passed": 1.5}, "'sample_passed' must be a number from 0 to 1"),
])
def test_a_line_that_is_not_a_record_is_refused_with_where_and_why(change: dict[str, object], problem: str) -> None:
    body = {**json.loads(sample_record().to_json()), **change}
    with pytest.raises(RecordError, match=problem) as caught:
        parse_record(json.dumps(body), "trail.jsonl:7")
    assert str(caught.value).startswith("trail.jsonl:7")


def test_a_trail_reads_oldest_first_and_names_the_bad_line(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    (tmp_path / "audit.jsonl.2").write_text(sample_record("a").to_json() + "\n")
    (tmp_path / "audit.jsonl.1").write_text(sample_record("b").to_json() + "\n\n")
    path.write_text(sample_record("c").to_json() + "\n")
    assert [r.request_id for r in read_trail(path)] == ["a", "b", "c"]
    assert [r.request_id for r in read_trail(path, rotated=False)] == ["c"]
    path.write_text(sample_record("c").to_json() + "\nnot json\n")
    with pytest.raises(RecordError, match=r"audit.jsonl:2: not JSON"):
        list(read_trail(path))
    with pytest.raises(RecordError, match="no such audit trail"):
        list(read_trail(tmp_path / "none.jsonl"))
