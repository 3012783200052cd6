"""Starting uvicorn: the proxy alone, or in front of the built-in demo upstream."""

from __future__ import annotations

import logging
import os
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import replace

import uvicorn
from starlette.applications import Starlette

from guardproxy.audit.otlp import logs_endpoint
from guardproxy.config import Settings
from guardproxy.http.app import create_app
from guardproxy.telemetry import start_metrics_listener
from guardproxy.telemetry.logs import configure_access_log
from guardproxy.telemetry.tracing import exporter_from_environment

log = logging.getLogger("guardproxy")


def _uvicorn_options(settings: Settings) -> dict[str, object]:
    return {
        "host": settings.host, "port": settings.port, "loop": "uvloop", "http": "httptools",
        "log_level": settings.log_level.lower(), "server_header": False, "timeout_graceful_shutdown": 10,
        "access_log": settings.log_level.lower() == "debug",
        # The proxy never reads the client's address, so X-Forwarded-* need not be parsed per request.
        "proxy_headers": False,
    }


def serve(settings: Settings) -> int:
    logging.getLogger("httpx").setLevel(logging.WARNING)  # its per-request INFO line is noise at proxy rates
    logging.getLogger("watchfiles").setLevel(logging.WARNING)  # "1 change detected" for any file in the directory
    configure_access_log()
    try:  # settings that would stop every worker, refused once here with a clear line instead
        settings.upstream_keys(os.environ)
        settings.admin_key(os.environ)
        exporter = exporter_from_environment(os.environ)
    except ValueError as exc:
        print(f"guardproxy: {exc}", file=sys.stderr)
        return 2
    if exporter is not None:
        exporter.shutdown()
    if settings.metrics_port and settings.metrics_port == settings.port:
        print("guardproxy: --metrics-port must differ from --port", file=sys.stderr)
        return 2
    if settings.audit_otlp and not (settings.audit and logs_endpoint(os.environ)):
        print("guardproxy: --audit-otlp needs --audit and OTEL_EXPORTER_OTLP_ENDPOINT (or "
              "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT)", file=sys.stderr)
        return 2
    if settings.audit and settings.audit != "-" and settings.workers > 1:
        print("guardproxy: --audit FILE needs --workers 1 (several processes cannot rotate one file); "
              "use --audit - and a log collector, or one proxy per trail", file=sys.stderr)
        return 2
    if settings.workers > 1:
        os.environ.update(settings.to_env())
        metrics_dir = _multiprocess_metrics_dir() if settings.metrics else None
        stop_metrics = None
        if metrics_dir is not None and settings.metrics_port:
            try:
                stop_metrics = start_metrics_listener(settings.host, settings.metrics_port,
                                                      multiprocess_dir=metrics_dir)
            except OSError as exc:
                print(f"guardproxy: --metrics-port {settings.metrics_port}: {exc}", file=sys.stderr)
                shutil.rmtree(metrics_dir, ignore_errors=True)
                return 2
        try:
            uvicorn.run("guardproxy.http.app:app_from_environment", factory=True, workers=settings.workers,
                        **_uvicorn_options(settings))  # type: ignore[arg-type]
        finally:
            if stop_metrics is not None:
                stop_metrics()
            if metrics_dir is not None:
                shutil.rmtree(metrics_dir, ignore_errors=True)
    else:
        uvicorn.run(create_app(settings), **_uvicorn_options(settings))  # type: ignore[arg-type]
    return 0


def _multiprocess_metrics_dir() -> str:
    """A fresh directory where every worker writes its metric values, so ``/metrics``
    on any worker adds up all of them (prometheus-client's multiprocess mode). Set
    before the workers start: prometheus-client reads it when first imported."""
    path = tempfile.mkdtemp(prefix="guardproxy-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = path
    return path


def start_in_thread(app: Starlette, host: str, port: int) -> uvicorn.Server:
    """Serve ``app`` from a daemon thread; returns once it listens."""
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning", loop="asyncio",
                                           lifespan="on"))
    thread = threading.Thread(target=server.run, name="demo-upstream", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"the demo upstream could not start on {host}:{port}")
        time.sleep(0.01)
    return server


def bound_port(server: uvicorn.Server) -> int:
    for listener in server.servers:
        for sock in listener.sockets:
            return int(sock.getsockname()[1])
    raise RuntimeError("server has no socket")


def serve_demo(settings: Settings, demo_port: int) -> int:
    from guardproxy.demo import create_demo_upstream

    upstream = start_in_thread(create_demo_upstream(), "127.0.0.1", demo_port)
    url = f"http://127.0.0.1:{bound_port(upstream)}/v1"
    log.info("demo upstream on %s; proxy on http://%s:%d/v1 with policy %s", url, settings.host, settings.port,
             settings.policy)
    try:
        # The demo speaks Anthropic's API at its root and Azure's deployment paths too.
        return serve(replace(settings, upstream=url, azure_upstream=settings.azure_upstream or url.removesuffix("/v1")))
    finally:
        upstream.should_exit = True
