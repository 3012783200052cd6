"""Finished requests counted in batches: what ``Telemetry.flush`` turns into metrics.

Counting a request as it ends touches a dozen metric children, each behind a lock,
and a histogram's buckets one by one. Counting a batch costs a fraction of that:
requests are added up per series first (most requests of a batch share route,
model, verdict and status), durations are gathered per route, and each series is
then incremented once, each histogram bucket once (``observe_all``). The metrics
are the same as counting one by one; a test holds them equal.
"""

from __future__ import annotations

import bisect
from typing import Any

from guardproxy.telemetry.report import RequestReport

_TIMES = 5  # per route: whole request, input overhead, output overhead, upstream, time to first token


class Batch:
    """Finished requests, added up; ``rare`` keeps the ones with guard runs, findings,
    failures or retries, which are counted one by one."""

    __slots__ = ("rare", "requests", "times", "tokens")

    def __init__(self) -> None:
        # (route, model, verdict, status, client key, refused for its key, upstream error) -> requests
        self.requests: dict[tuple[Any, ...], int] = {}
        self.times: dict[str, tuple[list[float], ...]] = {}
        self.tokens: dict[tuple[str | None, str], int] = {}
        self.rare: list[RequestReport] = []

    def add(self, report: RequestReport) -> None:
        key = (report.route, report.model, report.verdict, report.status, report.client_key, report.auth_refused,
               report.upstream_error)
        requests = self.requests
        requests[key] = requests.get(key, 0) + 1
        times = self.times.get(report.route)
        if times is None:
            times = self.times[report.route] = tuple([] for _ in range(_TIMES))
        times[0].append(report.ended - report.started)
        if report.input_seconds is not None:
            times[1].append(report.input_seconds)
        if report.output_seconds is not None:
            times[2].append(report.output_seconds)
        if report.upstream_seconds is not None:
            times[3].append(report.upstream_seconds)
        if report.first_content is not None:
            times[4].append(report.first_content - report.started)
        if report.usage:
            tokens = self.tokens
            for direction, count in report.usage.items():
                tokens[(report.model, direction)] = tokens.get((report.model, direction), 0) + count
        if report.guard_runs or report.findings or report.failures or report.upstream_retries:
            self.rare.append(report)


def observe_all(child: Any, amounts: list[float]) -> None:
    """``child.observe(a)`` for each amount, with one increment per bucket touched and one
    of the sum, when the histogram child has prometheus-client's layout (a
    non-cumulative value per upper bound; an amount goes to the first bound at or above
    it, found by bisection as ``observe`` finds it by a scan); else one ``observe`` each."""
    bounds, buckets, total = (getattr(child, "_upper_bounds", None), getattr(child, "_buckets", None),
                              getattr(child, "_sum", None))
    if bounds is None or buckets is None or total is None or len(bounds) != len(buckets):
        for amount in amounts:
            child.observe(amount)
        return
    per_bucket: dict[int, int] = {}
    for amount in amounts:
        index = bisect.bisect_left(bounds, amount)
        if index < len(bounds) and amount == amount:  # NaN: no bucket, as in prometheus-client
            per_bucket[index] = per_bucket.get(index, 0) + 1
    total.inc(sum(amounts))
    for index, count in per_bucket.items():
        buckets[index].inc(count)
