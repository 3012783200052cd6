"""``guardproxy report``: an audit trail as one self-contained HTML page for people who read pictures.

The page holds, each with a sentence on how to read it, a chart (inline SVG, ``report_charts``)
and the exact numbers in a table: violations over time by entry and label, the verdict mix,
guard latency percentiles, shadow disagreement, the top labels, and the policy versions in
force. No scripts, styles or fonts from elsewhere; every string from the trail is escaped.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from guardproxy.audit.record import STAGES, VERDICTS, AuditRecord
from guardproxy.audit.report_charts import (
    PERCENTILE_COLORS,
    SERIES_COLORS,
    VERDICT_COLORS,
    empty_chart,
    esc,
    grouped_bars,
    horizontal_bars,
    matrix,
    stacked_columns,
    timeline,
)

MAX_COLUMNS = 200  # time buckets drawn; a longer period gets wider buckets
TOP_SERIES = 9  # entry/label series in the violations chart; the rest are summed as "other"
TOP_LABELS = 15
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def bucket_seconds(text: str) -> int:
    """``15m``, ``1h``, ``1d`` (or seconds, ``90s``) as seconds; ``ValueError`` otherwise."""
    match = re.fullmatch(r"\s*(\d+)\s*([smhd])\s*", text)
    if not match or int(match.group(1)) == 0:
        raise ValueError(f"--bucket {text!r}: give a positive number and a unit, such as 15m, 1h or 1d")
    return int(match.group(1)) * _UNITS[match.group(2)]


def parse_time(value: str) -> datetime:
    """An RFC 3339 time as an aware UTC datetime (``ValueError`` if it is not one)."""
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


@dataclass(slots=True)
class VersionSeen:
    first: datetime
    last: datetime
    requests: int = 0


@dataclass
class TrailSummary:
    """What the page shows, counted in one pass over the trail."""

    bucket: int
    records: int = 0
    first: datetime | None = None
    last: datetime | None = None
    violations: Counter[tuple[int, str]] = field(default_factory=Counter)  # (bucket start, "stage/entry: label")
    verdicts: Counter[str] = field(default_factory=Counter)
    stage_verdicts: dict[str, Counter[str]] = field(default_factory=lambda: {s: Counter() for s in STAGES})
    latency_ms: dict[str, LatencyHistogram] = field(default_factory=dict)  # "stage/entry" -> per request
    shadow: dict[str, Counter[tuple[str, str]]] = field(default_factory=dict)  # stage or "final" -> pairs
    shadow_policies: Counter[str] = field(default_factory=Counter)
    labels: Counter[str] = field(default_factory=Counter)  # requests where a label fired
    versions: dict[tuple[str, str], VersionSeen] = field(default_factory=dict)

    def add(self, record: AuditRecord) -> None:
        moment = parse_time(record.time)
        self.records += 1
        self.first = moment if self.first is None else min(self.first, moment)
        self.last = moment if self.last is None else max(self.last, moment)
        start = int(moment.timestamp()) // self.bucket * self.bucket
        # A passed record written at sample_passed stands for 1/sample_passed passed requests.
        weight = round(1 / record.sample_passed) if record.verdict == "pass" and record.sample_passed > 0 else 1
        self.verdicts[record.verdict] += weight
        for stage, verdict in record.stages.items():
            self.stage_verdicts[stage][verdict] += weight if verdict == "pass" else 1
        fired = {(f"{g.stage}/{g.name}", label) for g in record.guards for label in g.labels}
        for name, label in fired:
            self.violations[(start, f"{name}: {label}")] += 1
        self.labels.update({label for _, label in fired})
        for g in record.guards:
            self.latency_ms.setdefault(f"{g.stage}/{g.name}", LatencyHistogram()).add(g.seconds * 1000)
        if record.shadow is not None:
            self.shadow_policies[f"{record.shadow.policy}@{record.shadow.version}"] += 1
            self.shadow.setdefault("final", Counter())[(record.verdict, record.shadow.verdict)] += 1
            for stage, verdict in record.shadow.stages.items():
                if stage in record.stages:
                    self.shadow.setdefault(stage, Counter())[(record.stages[stage], verdict)] += 1
        seen = self.versions.setdefault((record.policy, record.policy_version), VersionSeen(moment, moment))
        seen.first, seen.last = min(seen.first, moment), max(seen.last, moment)
        seen.requests += 1


def summarize(records: Iterable[AuditRecord], bucket: int) -> TrailSummary:
    """Count the trail; ``RecordError`` from the trail, or ``ValueError`` from a bad time, propagates."""
    summary = TrailSummary(bucket)
    for number, record in enumerate(records, 1):
        try:
            summary.add(record)
        except ValueError:
            raise ValueError(f"record {number} (request {record.request_id}): time {record.time!r} is not "
                             "RFC 3339") from None
    return summary


class LatencyHistogram:
    """Milliseconds in logarithmic buckets half a percent wide: a week of traffic takes a few
    thousand counters per guard, not one float per request, and a percentile is within 0.5 %."""

    GROWTH = 1.005
    FLOOR_MS = 0.001  # anything faster counts as this

    def __init__(self) -> None:
        self.buckets: Counter[int] = Counter()
        self.count = 0

    def add(self, ms: float) -> None:
        self.buckets[round(math.log(max(ms, self.FLOOR_MS)) / math.log(self.GROWTH))] += 1
        self.count += 1

    def percentile(self, share: float) -> float:
        """Nearest rank, as the middle of the bucket it falls in."""
        rank = max(1, math.ceil(share / 100 * self.count))
        seen = 0
        for index in sorted(self.buckets):
            seen += self.buckets[index]
            if seen >= rank:
                return float(self.GROWTH ** index)
        raise ValueError("no latency recorded")


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC") if moment else "-"


def _table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{esc(cell)}</td>" for cell in row) + "</tr>" for row in rows)
    return f'<details><summary>The numbers</summary><table><tr>{head}</tr>{body}</table></details>'


def _section(anchor: str, title: str, how_to_read: str, chart: str, table: str = "") -> str:
    return (f'<section id="{anchor}"><h2>{esc(title)}</h2><p class="how">{esc(how_to_read)}</p>'
            f'<div class="chart">{chart}</div>{table}</section>')


def _violations(summary: TrailSummary) -> str:
    title = "Violations over time by guard and label"
    how = ("Requests in which a guard entry found something (any action, monitor mode included), per time "
           f"bucket, stacked by entry and label. The {TOP_SERIES} most frequent entry/label pairs are shown; "
           "the rest are summed as 'other'. A request in which two entries or labels fired counts once for each.")
    if not summary.violations or summary.first is None or summary.last is None:
        return _section("violations", title, how, empty_chart(title, "No guard fired in this period."))
    bucket = summary.bucket
    first = int(summary.first.timestamp()) // bucket * bucket
    count = (int(summary.last.timestamp()) - first) // bucket + 1
    if count > MAX_COLUMNS:
        bucket = bucket * math.ceil(count / MAX_COLUMNS)
        first = int(summary.first.timestamp()) // bucket * bucket
        count = (int(summary.last.timestamp()) - first) // bucket + 1
        how += f" The bucket was widened to {bucket // 60} minutes to keep the chart readable."
    totals: Counter[str] = Counter()
    for (_, name), n in summary.violations.items():
        totals[name] += n
    shown = [name for name, _ in totals.most_common(TOP_SERIES)]
    series = shown + (["other"] if len(totals) > len(shown) else [])
    values = {name: [0] * count for name in series}
    for (start, name), n in summary.violations.items():
        column = (start // bucket * bucket - first) // bucket
        values[name if name in shown else "other"][column] += n
    fmt = "%m-%d %H:%M" if bucket < 86400 else "%Y-%m-%d"
    columns = [datetime.fromtimestamp(first + i * bucket, UTC).strftime(fmt) for i in range(count)]
    chart = stacked_columns(title, columns, series, values, "requests", f"time (UTC), buckets of {_span(bucket)}")
    rows = [(columns[i], name, values[name][i]) for i in range(count) for name in series if values[name][i]]
    return _section("violations", title, how, chart,
                    _table(["bucket start (UTC)", "stage/entry: label", "requests"], rows))


def _span(seconds: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _verdict_mix(summary: TrailSummary) -> str:
    title = "Verdict mix"
    how = ("How each request ended (the worse of its stages), then each stage on its own: pass, flagged "
           "(a finding that changed nothing), redacted, blocked. A policy with audit: {sample_passed: below 1} "
           "writes only a share of passed requests: each passed record is counted as the 1/sample_passed "
           "requests it stands for, so pass counts are then estimates.")
    if not summary.records:
        return _section("verdicts", title, how, empty_chart(title, "No request in this period."))
    rows: list[tuple[str, float, str]] = []
    texts: list[str] = []
    table: list[tuple[str, str, int, str]] = []
    for scope, counts in (("all requests", summary.verdicts), *summary.stage_verdicts.items()):
        total = sum(counts.values())
        if total and rows:
            rows.append(("", 0.0, ""))
            texts.append("")
        for verdict in VERDICTS:
            if total:
                rows.append((f"{scope}: {verdict}", float(counts[verdict]), VERDICT_COLORS[verdict]))
                texts.append(f"{counts[verdict]} ({100 * counts[verdict] / total:.1f}%)")
                table.append((scope, verdict, counts[verdict], f"{100 * counts[verdict] / total:.1f}%"))
    chart = horizontal_bars(title, rows, "requests", texts)
    return _section("verdicts", title, how, chart, _table(["scope", "verdict", "requests", "share"], table))


def _latency(summary: TrailSummary) -> str:
    title = "Guard latency percentiles"
    how = ("Time each guard entry took per request (all its runs summed, a stream's windows included), in "
           "milliseconds (within 0.5 %): p50 is the median request, p99 the slowest one in a hundred.")
    if not summary.latency_ms:
        return _section("latency", title, how, empty_chart(title, "No guard ran in this period."))
    rows = [(name, {f"p{p}": histogram.percentile(p) for p in (50, 95, 99)})
            for name, histogram in sorted(summary.latency_ms.items())]
    chart = grouped_bars(title, rows, ["p50", "p95", "p99"], PERCENTILE_COLORS, "milliseconds")
    table = [(name, summary.latency_ms[name].count, *(f"{v[k]:.2f}" for k in ("p50", "p95", "p99")))
             for name, v in rows]
    return _section("latency", title, how, chart, _table(["stage/entry", "requests", "p50 ms", "p95 ms", "p99 ms"],
                                                         table))


def _shadow(summary: TrailSummary) -> str:
    title = "Shadow disagreement"
    how = ("Live verdict (rows) against the shadow policy's verdict (columns) for the same requests. Grey "
           "cells agree; orange cells are requests the shadow policy would have treated differently.")
    if not summary.shadow:
        return _section("shadow", title, how, empty_chart(title, "No shadow policy ran in this period."))
    policies = ", ".join(f"{name} ({n} requests)" for name, n in summary.shadow_policies.most_common())
    parts = [f'<p class="note">Shadow policies: {esc(policies)}</p>']
    table: list[tuple[str, str, str, int]] = []
    for scope in ("final", *STAGES):
        pairs = summary.shadow.get(scope)
        if not pairs:
            continue
        total = sum(pairs.values())
        differ = sum(n for (live, shadow), n in pairs.items() if live != shadow)
        name = "whole request" if scope == "final" else f"{scope} stage"
        parts.append(f"<h3>{esc(name)}: {differ} of {total} differ ({100 * differ / total:.1f}%)</h3>")
        parts.append(matrix(f"{title}, {name}", VERDICTS, VERDICTS, dict(pairs), "live verdict", "shadow verdict"))
        table.extend((name, live, shadow, n) for (live, shadow), n in sorted(pairs.items()))
    return _section("shadow", title, how, "".join(parts), _table(["scope", "live", "shadow", "requests"], table))


def _top_labels(summary: TrailSummary) -> str:
    title = "Top labels"
    how = f"The {TOP_LABELS} labels found in the most requests (a request counts once per label)."
    if not summary.labels:
        return _section("labels", title, how, empty_chart(title, "No label was found in this period."))
    top = summary.labels.most_common(TOP_LABELS)
    rows = [(label, float(n), SERIES_COLORS[0]) for label, n in top]
    chart = horizontal_bars(title, rows, "requests")
    return _section("labels", title, how, chart, _table(["label", "requests"], top))


def _versions(summary: TrailSummary) -> str:
    title = "Policy versions in force"
    how = "Each policy version that decided requests in this period: when it was first and last seen, and how often."
    if not summary.versions or summary.first is None or summary.last is None:
        return _section("versions", title, how, empty_chart(title, "No policy decided a request in this period."))
    start, end = summary.first.timestamp(), summary.last.timestamp()
    length = (end - start) or 1.0
    ordered = sorted(summary.versions.items(), key=lambda item: (item[1].first, item[0]))
    rows = [(f"{policy}@{version}", (seen.first.timestamp() - start) / length,
             (seen.last.timestamp() - start) / length, f"{seen.requests} requests")
            for (policy, version), seen in ordered]
    chart = timeline(title, rows, _when(summary.first), _when(summary.last))
    table = [(policy, version, _when(seen.first), _when(seen.last), seen.requests)
             for (policy, version), seen in ordered]
    return _section("versions", title, how, chart,
                    _table(["policy", "version", "first seen", "last seen", "requests"], table))


_STYLE = """body{font-family:Helvetica,Arial,sans-serif;margin:24px auto;max-width:1000px;color:#222}
h1{font-size:24px;margin-bottom:4px}h2{font-size:19px;border-bottom:1px solid #ddd;padding-bottom:4px;margin-top:34px}
h3{font-size:15px;margin:14px 0 6px}.meta{color:#555}.how{color:#444;max-width:860px}.note{color:#444}
.chart{overflow-x:auto}table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ccc;padding:3px 8px;
font-size:13px;text-align:left}summary{cursor:pointer;color:#2a5db0;margin-top:6px}nav a{margin-right:14px}"""


def render_report(summary: TrailSummary, trail: str) -> str:
    """The whole page."""
    sections = [_violations(summary), _verdict_mix(summary), _latency(summary), _shadow(summary),
                _top_labels(summary), _versions(summary)]
    nav = " ".join(f'<a href="#{anchor}">{esc(name)}</a>' for anchor, name in (
        ("violations", "Violations"), ("verdicts", "Verdicts"), ("latency", "Latency"), ("shadow", "Shadow"),
        ("labels", "Labels"), ("versions", "Policy versions")))
    blocked = summary.verdicts["blocked"]
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>guardproxy audit report</title>'
            f"<style>{_STYLE}</style></head><body><h1>guardproxy audit report</h1>"
            f'<p class="meta">Trail {esc(trail)}: <strong>{summary.records}</strong> requests from '
            f"{esc(_when(summary.first))} to {esc(_when(summary.last))}; {blocked} blocked. Generated "
            f"{esc(_when(datetime.now(UTC)))}. The trail holds decisions, labels and offsets; no text is shown "
            f"here.</p><nav>{nav}</nav>" + "".join(sections) + "</body></html>")
