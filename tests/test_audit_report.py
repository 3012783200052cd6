"""``guardproxy report``: the page's structure, the numbers it shows, escaping, empty states, and that
headless Chromium renders it (where Debian's ``chromium`` is installed; ``make test-setup`` installs it)."""

from __future__ import annotations

import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from guardproxy.audit.report import LatencyHistogram, bucket_seconds
from guardproxy.cli import run
from tests.audit_trails import guard, record, shadow, write_trail

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
SECTIONS = ["violations", "verdicts", "latency", "shadow", "labels", "versions"]
EVIL = "<script>alert('x')</script>"


class Page(HTMLParser):
    """The parts of the page the tests look at: sections, headings, SVGs, table cells, all tags."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.sections: list[str] = []
        self.headings: list[str] = []
        self.svgs = 0
        self.rects = 0
        self.cells: list[str] = []
        self.empty: list[str] = []
        self.attributes: list[str] = []
        self._stack: list[str] = []
        self._texts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self._stack.append(tag)
        self.attributes.extend(value or "" for _, value in attrs)
        values = dict(attrs)
        if tag == "section":
            self.sections.append(values.get("id") or "")
        self.svgs += tag == "svg"
        self.rects += tag == "rect"
        if tag in ("td", "h2", "h3", "text"):
            self._texts = []

    def handle_endtag(self, tag: str) -> None:
        while self._stack and self._stack.pop() != tag:
            pass
        text = "".join(self._texts).strip()
        if tag == "td":
            self.cells.append(text)
        elif tag in ("h2", "h3"):
            self.headings.append(text)
        elif tag == "text" and text.startswith("No "):
            self.empty.append(text)

    def handle_data(self, data: str) -> None:
        self._texts.append(data)


def _parse(html: str) -> Page:
    page = Page()
    page.feed(html)
    return page


def _trail(path: Path) -> Path:
    return write_trail(path, [
        record("r1", "pass", {"input": "pass", "output": "pass"}, [guard("input", "injection", seconds=0.002)],
               time="2026-12-01T10:05:00.000Z"),
        record("r2", "blocked", {"input": "blocked"}, [guard("input", "injection", ["prompt_injection"],
                                                             seconds=0.004)],
               time="2026-12-01T10:40:00.000Z", shadow=shadow("blocked", {"input": "blocked"})),
        record("r3", "redacted", {"input": "redacted", "output": "pass"},
               [guard("input", "injection", seconds=0.006), guard("input", "pii", ["PERSON", EVIL], kind="pii",
                                                                  action="redact", seconds=0.030)],
               time="2026-12-01T12:10:00.000Z", version="v2", shadow=shadow("blocked", {"input": "blocked"})),
    ])


def test_report_has_every_section_with_its_numbers(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "report.html"
    assert run(["report", "--audit", str(_trail(tmp_path / "audit.jsonl")), "--html", str(out)]) == 0
    assert "report of 3 records (2026-12-01 10:05:00 UTC to 2026-12-01 12:10:00 UTC)" in capsys.readouterr().out
    html = out.read_text()
    page = _parse(html)
    assert page.sections == SECTIONS
    assert page.headings[:6] == ["Violations over time by guard and label", "Verdict mix",
                                 "Guard latency percentiles", "Shadow disagreement",
                                 "whole request: 1 of 2 differ (50.0%)", "input stage: 1 of 2 differ (50.0%)"]
    assert page.empty == []
    assert page.svgs == 7  # violations, verdicts, latency, two shadow matrices, labels, versions
    cells = page.cells
    # Violations: buckets of 1h, r2 at 10:xx and r3 at 12:xx (11:xx is an empty column).
    assert _row(cells, "12-01 10:00", 3) == ["12-01 10:00", "input/injection: prompt_injection", "1"]
    assert ["12-01 12:00", "input/pii: PERSON", "1"] in _rows(cells, 3)
    assert ["all requests", "blocked", "1", "33.3%"] in _rows(cells, 4)
    assert ["input", "redacted", "1", "33.3%"] in _rows(cells, 4)
    # p50, p95, p99 of 2, 4 and 6 ms, from buckets half a percent wide
    assert ["input/injection", "3", "4.00", "5.99", "5.99"] in _rows(cells, 5)
    assert ["whole request", "redacted", "blocked", "1"] in _rows(cells, 4)
    assert ["PERSON", "1"] in _rows(cells, 2) and ["prompt_injection", "1"] in _rows(cells, 2)
    assert ["live", "v1", "2026-12-01 10:05:00 UTC", "2026-12-01 10:40:00 UTC", "2"] in _rows(cells, 5)
    assert ["live", "v2", "2026-12-01 12:10:00 UTC", "2026-12-01 12:10:00 UTC", "1"] in _rows(cells, 5)
    assert "<strong>3</strong> requests" in html


def _rows(cells: list[str], width: int) -> list[list[str]]:
    """Every run of ``width`` consecutive cells (tables of that width are rows of it, among others)."""
    return [cells[i:i + width] for i in range(len(cells) - width + 1)]


def _row(cells: list[str], first: str, width: int) -> list[str]:
    return next(row for row in _rows(cells, width) if row[0] == first)


def test_every_string_from_the_trail_is_escaped(tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    assert run(["report", "--audit", str(_trail(tmp_path / "audit.jsonl")), "--html", str(out)]) == 0
    html = out.read_text()
    assert EVIL not in html
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in html
    page = _parse(html)
    assert "script" not in page.tags
    assert EVIL in page.cells  # shown as text, in the top labels table
    assert not any(a.startswith(("http:", "https:", "//")) for a in page.attributes
                   if a != "http://www.w3.org/2000/svg")  # no external assets
    assert not {"link", "img", "iframe", "object"} & set(page.tags)


def test_each_chart_has_an_empty_state(tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    trail = write_trail(tmp_path / "audit.jsonl", [])
    assert run(["report", "--audit", str(trail), "--html", str(out)]) == 0
    page = _parse(out.read_text())
    assert page.sections == SECTIONS
    assert page.empty == ["No guard fired in this period.", "No request in this period.",
                          "No guard ran in this period.", "No shadow policy ran in this period.",
                          "No label was found in this period.", "No policy decided a request in this period."]
    quiet = write_trail(tmp_path / "quiet.jsonl", [record("r1", "pass", {"input": "pass"})])
    assert run(["report", "--audit", str(quiet), "--html", str(out)]) == 0
    page = _parse(out.read_text())
    assert "No guard fired in this period." in page.empty and "No shadow policy ran in this period." in page.empty
    assert ["all requests", "pass", "1", "100.0%"] in _rows(page.cells, 4)


def test_latency_percentiles_stay_within_half_a_percent() -> None:
    histogram = LatencyHistogram()
    values = [0.0, 0.0004, *(0.05 * 1.07 ** i for i in range(400))]
    for value in values:
        histogram.add(value)
    ordered = sorted(values)
    for share in (1, 50, 95, 99, 100):
        exact = max(ordered[max(0, -(-share * len(ordered) // 100) - 1)], LatencyHistogram.FLOOR_MS)
        assert abs(histogram.percentile(share) / exact - 1) <= 0.0026, share
    assert histogram.count == 402 and len(histogram.buckets) < 402


def test_bucket_flag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert (bucket_seconds("15m"), bucket_seconds("1h"), bucket_seconds("2d"), bucket_seconds("90s")) == \
        (900, 3600, 172800, 90)
    trail = _trail(tmp_path / "audit.jsonl")
    assert run(["report", "--audit", str(trail), "--html", str(tmp_path / "r.html"), "--bucket", "1w"]) == 2
    assert "--bucket '1w'" in capsys.readouterr().err
    assert run(["report", "--audit", str(trail), "--html", str(tmp_path / "r.html"), "--bucket", "1d"]) == 0
    assert ["12-01 00:00", "input/pii: PERSON", "1"] not in _rows(_parse((tmp_path / "r.html").read_text()).cells, 3)
    assert ["2026-12-01", "input/pii: PERSON", "1"] in _rows(_parse((tmp_path / "r.html").read_text()).cells, 3)


def test_a_bad_trail_exits_2_naming_the_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    trail = _trail(tmp_path / "audit.jsonl")
    with trail.open("a") as lines:
        lines.write("not json\n")
    assert run(["report", "--audit", str(trail), "--html", str(tmp_path / "r.html")]) == 2
    assert f"{trail}:4: not JSON" in capsys.readouterr().err
    assert not (tmp_path / "r.html").exists()


@pytest.mark.e2e
@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (Debian package 'chromium'; "
                                             "make test-setup installs it)")
def test_headless_chromium_renders_the_page(tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    assert run(["report", "--audit", str(_trail(tmp_path / "audit.jsonl")), "--html", str(out)]) == 0
    assert CHROMIUM is not None
    flags = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
             f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([*flags, "--dump-dom", out.as_uri()], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    page = _parse(dom.stdout)
    assert page.sections == SECTIONS and page.svgs == 7 and page.rects > 20
    shot = tmp_path / "report.png"
    result = subprocess.run([*flags, "--window-size=1050,1400", f"--screenshot={shot}", out.as_uri()],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    png = shot.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    assert (width, height) == (1050, 1400)
    assert len(png) > 30_000  # charts drawn, not a blank page (a blank PNG of this size is a few KB)


def test_a_sampled_passed_record_counts_for_the_requests_it_stands_for() -> None:
    from dataclasses import replace

    from guardproxy.audit.report import TrailSummary

    summary = TrailSummary(bucket=3600)
    for index in range(3):  # written at sample_passed 0.1: each stands for ten passed requests
        summary.add(replace(record(f"p{index}", "pass", {"input": "pass"}), sample_passed=0.1))
    summary.add(replace(record("b", "blocked", {"input": "blocked", "output": "pass"}), sample_passed=0.1))
    assert summary.verdicts == {"pass": 30, "blocked": 1}
    assert summary.stage_verdicts["input"] == {"pass": 30, "blocked": 1}
    assert summary.stage_verdicts["output"] == {"pass": 1}  # a written blocked record is not a sample
