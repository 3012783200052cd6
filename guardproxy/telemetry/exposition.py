"""``GET /metrics`` in Prometheus's text format.

With one worker, the app's own registry is exposed. With several
(``--workers N``), each worker writes its values to files in the directory
named by ``PROMETHEUS_MULTIPROC_DIR`` (the CLI makes a fresh one before the
workers start), and whichever worker answers a scrape adds up all of them
with prometheus-client's ``MultiProcessCollector``.

With ``--metrics-port``, ``/metrics`` moves to a listener of its own and the
public port answers 404 for it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest, start_http_server
from prometheus_client.multiprocess import MultiProcessCollector
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from guardproxy.telemetry.facade import Telemetry


def _render(telemetry: Telemetry) -> bytes:
    if telemetry.multiprocess_dir is not None:
        telemetry.flush()  # this worker's batch; the others write theirs within FLUSH_AFTER
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


def start_metrics_listener(host: str, port: int, registry: CollectorRegistry | None = None,
                           multiprocess_dir: str | None = None) -> Callable[[], None]:
    """``/metrics`` on a listener of its own (``--metrics-port``), so the public port need not
    expose it. It runs in a thread (prometheus-client's WSGI server), off the event loop. Given
    ``multiprocess_dir``, it adds up every worker's files (the CLI's parent process serves it).
    Returns the function that stops it. OSError if the port cannot be bound."""
    if multiprocess_dir is not None:
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=multiprocess_dir)  # type: ignore[no-untyped-call]
    assert registry is not None
    server, thread = start_http_server(port, addr=host, registry=registry)

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join(5)

    return stop
