"""Finished requests are counted and logged in batches (``telemetry/batch.py``): the
metrics equal counting one by one, a collection never misses a finished request,
and under ``guardproxy serve`` the access lines leave in one write per batch."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import math
from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.parser import text_string_to_metric_families

from guardproxy.telemetry import RequestReport, Telemetry
from guardproxy.telemetry.batch import observe_all
from guardproxy.telemetry.facade import FLUSH_AFTER
from guardproxy.telemetry.logs import ACCESS_LOGGER, configure_access_log
from guardproxy.telemetry.metrics import OVERHEAD_BUCKETS

AMOUNTS = [0.0, -1.0, 0.0005, 0.00050001, 0.001, 0.0049, 0.005, 1.0, 5.0, 5.1, 1e9, math.inf, 0.3, 0.3]


def samples(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    from prometheus_client import generate_latest

    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(generate_latest(registry).decode())
            for s in family.samples if not s.name.endswith("_created")}


def test_observe_all_equals_observe_one_by_one() -> None:
    one, batched = CollectorRegistry(), CollectorRegistry()
    by_one = Histogram("h", "h", ("route",), registry=one, buckets=OVERHEAD_BUCKETS).labels("chat")
    by_batch = Histogram("h", "h", ("route",), registry=batched, buckets=OVERHEAD_BUCKETS).labels("chat")
    for amount in AMOUNTS:
        by_one.observe(amount)
    observe_all(by_batch, AMOUNTS)
    assert samples(batched) == samples(one)
    assert samples(one)[("h_count", (("route", "chat"),))] == len(AMOUNTS)


def report(index: int, **changes: object) -> RequestReport:
    started = 10.0 + index
    made = RequestReport(f"id{index:014d}", "chat" if index % 3 else "responses", "POST", "/v1/chat/completions",
                         started, ended=started + 0.001 * (index % 7), status=200 if index % 5 else 400,
                         model="gpt-4o-mini" if index % 2 else "demo", verdict="pass" if index % 5 else "blocked",
                         policy_name="p", chain="default", input_seconds=0.0002 * index,
                         upstream_seconds=None if index % 5 == 0 else 0.01 * index,
                         first_content=started + 0.0005 if index % 4 == 0 else None,
                         usage={"input": index, "output": 2 * index} if index % 2 else {},
                         upstream_error="status_5xx" if index % 11 == 0 else None)
    for name, value in changes.items():
        setattr(made, name, value)
    return made


def test_a_batch_counts_what_one_by_one_counts() -> None:
    """Forty requests counted in one batch, against each counted in a batch of its own."""
    reports = [report(i) for i in range(40)]
    one, batched = CollectorRegistry(), CollectorRegistry()
    telemetry_one, telemetry_batched = Telemetry(one), Telemetry(batched)
    for item in reports:
        telemetry_one.request_finished(item, None)  # no event loop: each is flushed at once

    async def finish_all() -> None:
        for item in reports:
            telemetry_batched.request_finished(item, None)
        assert len(telemetry_batched._pending) == len(reports)  # waiting for its batch

    asyncio.run(finish_all())
    assert samples(batched) == samples(one)  # the collection flushed the batch first
    assert samples(one)[("guardproxy_requests_total", (("model", "demo"), ("route", "chat"), ("status_code", "400"),
                                                          ("verdict", "blocked")))] > 0


@pytest.fixture
def serve_log() -> Iterator[io.StringIO]:
    """The access logger as ``guardproxy serve`` sets it up, writing to a buffer that counts writes."""
    logger = logging.getLogger(ACCESS_LOGGER)
    saved = (logger.handlers[:], logger.level, logger.propagate)
    logger.handlers.clear()
    configure_access_log()
    stream = _CountingStream()
    logger.handlers[0].stream = stream  # type: ignore[attr-defined]
    logger.setLevel(logging.INFO)
    try:
        yield stream
    finally:
        logger.handlers[:], logger.level, logger.propagate = saved[0], saved[1], saved[2]


class _CountingStream(io.StringIO):
    writes = 0

    def alone(self) -> None:
        """pytest's log capture adds its handlers at the call phase: with them the logger
        is not the one ``serve`` sets up, so they are removed for the test's body."""
        logger = logging.getLogger(ACCESS_LOGGER)
        logger.handlers[:] = [h for h in logger.handlers if getattr(h, "_guardproxy_access", False)]

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)


def test_serve_writes_a_batch_of_lines_in_one_write(serve_log: _CountingStream) -> None:
    serve_log.alone()
    telemetry = Telemetry(CollectorRegistry())

    async def finish_all() -> None:
        for index in range(30):
            telemetry.request_finished(report(index), None)
        assert serve_log.getvalue() == ""  # not yet: the batch waits up to FLUSH_AFTER
        await asyncio.sleep(FLUSH_AFTER * 4)

    asyncio.run(finish_all())
    lines = [json.loads(line) for line in serve_log.getvalue().splitlines()]
    assert [line["request_id"] for line in lines] == [f"id{i:014d}" for i in range(30)]
    assert serve_log.writes == 1


def test_closing_writes_what_is_still_waiting(serve_log: _CountingStream) -> None:
    serve_log.alone()
    telemetry = Telemetry(None)

    async def finish_one() -> None:
        telemetry.request_finished(report(1), None)
        telemetry.close()

    asyncio.run(finish_one())
    [line] = serve_log.getvalue().splitlines()
    assert json.loads(line)["request_id"] == "id00000000000001"
