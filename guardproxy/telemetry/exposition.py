"""``GET /metrics`` in Prometheus's text format.

With one worker, the app's own registry is exposed. With several
(``--workers N``), each worker writes its values to files in the directory
named by ``PROMETHEUS_MULTIPROC_DIR`` (the CLI makes a fresh one before the
workers start), and whichever worker answers a scrape adds up all of them
with prometheus-client's ``MultiProcessCollector``.
"""

from __future__ import annotations

import asyncio

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from guardproxy.telemetry.facade import Telemetry


def _render(telemetry: Telemetry) -> bytes:
    if telemetry.multiprocess_dir is not None:
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=telemetry.multiprocess_dir)  # type: ignore[no-untyped-call]
        return generate_latest(registry)
    assert telemetry.registry is not None
    return generate_latest(telemetry.registry)


async def metrics_endpoint(request: Request) -> Response:
    telemetry: Telemetry = request.app.state.telemetry
    if telemetry.metrics is None:
        return PlainTextResponse("metrics are turned off (GUARDPROXY_METRICS=false)\n", status_code=404)
    body = await asyncio.to_thread(_render, telemetry) if telemetry.multiprocess_dir else _render(telemetry)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
