"""The audit writer: never blocks the caller, rotates by size, keeps a bounded number of files."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from guardproxy.audit.trail import read_trail, trail_files
from guardproxy.audit.writer import AuditWriter
from tests.test_audit_record import sample_record


def test_records_rotate_by_size_and_only_the_newest_files_are_kept(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    line = sample_record("r0").to_json()
    writer = AuditWriter(str(path), max_bytes=3 * (len(line) + 1) + 10, keep=2)
    for index in range(12):
        assert writer.submit(lambda index=index: sample_record(f"r{index}").to_json())
    writer.close()
    assert [p.name for p in trail_files(path)] == ["audit.jsonl.2", "audit.jsonl.1", "audit.jsonl"]
    assert not (tmp_path / "audit.jsonl.3").exists()
    ids = [record.request_id for record in read_trail(path)]
    assert ids == [f"r{i}" for i in range(3, 12)]  # oldest first; the first rotated-out file is gone
    assert all(len(p.read_text().splitlines()) == 3 for p in trail_files(path))
    assert writer.written == 12 and writer.dropped == 0


def test_a_full_queue_drops_and_counts_instead_of_blocking(tmp_path: Path) -> None:
    release = threading.Event()
    drops: list[int] = []
    writer = AuditWriter(str(tmp_path / "audit.jsonl"), queue_size=2, on_drop=lambda: drops.append(1))

    def slow() -> str:
        release.wait(10)
        return sample_record("slow").to_json()

    assert writer.submit(slow)
    accepted = [writer.submit(lambda: sample_record("x").to_json()) for _ in range(5)]
    assert accepted.count(True) <= 2 and accepted[-1] is False  # the caller never waited
    release.set()
    writer.close()
    assert writer.dropped == len(drops) == accepted.count(False)
    assert writer.written == 1 + accepted.count(True)


def test_a_job_that_fails_is_counted_and_the_trail_goes_on(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    drops: list[int] = []
    path = tmp_path / "audit.jsonl"
    writer = AuditWriter(str(path), on_drop=lambda: drops.append(1))

    def broken() -> str:
        raise KeyError("secret-value-never-logged")

    writer.submit(broken)
    writer.submit(lambda: sample_record("after").to_json())
    writer.close()
    assert drops == [1] and [r.request_id for r in read_trail(path)] == ["after"]
    assert "secret-value-never-logged" not in caplog.text and "KeyError" in caplog.text


def test_an_unwritable_path_fails_at_once(tmp_path: Path) -> None:
    with pytest.raises(OSError):
        AuditWriter(str(tmp_path / "missing" / "audit.jsonl"))
    with pytest.raises(ValueError, match="at least 1024"):
        AuditWriter(str(tmp_path / "a.jsonl"), max_bytes=10)


def test_appends_to_an_existing_trail(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    path.write_text(sample_record("old").to_json() + "\n")
    writer = AuditWriter(str(path))
    writer.submit(lambda: sample_record("new").to_json())
    writer.close()
    assert [json.loads(line)["request_id"] for line in path.read_text().splitlines()] == ["old", "new"]
