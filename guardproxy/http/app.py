"""The composition root: settings, policies, guards, upstream client and
routes are wired here and nowhere else."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator

from opentelemetry.sdk.trace.export import SpanExporter
from prometheus_client import CollectorRegistry
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from guardproxy.audit.otlp import OtlpAuditLogs
from guardproxy.audit.shadow import ShadowRunner
from guardproxy.audit.sink import EvidenceSink
from guardproxy.audit.writer import AuditWriter
from guardproxy.config import Settings, settings_from_environment
from guardproxy.heap import tune_allocator
from guardproxy.http.errors import ContainErrors, error_response
from guardproxy.http.front import ProxyFront
from guardproxy.proxy.runtime import Runtime
from guardproxy.proxy.upstream import create_client, create_relay_session
from guardproxy.telemetry import Telemetry, Tracing, metrics_endpoint, start_metrics_listener
from guardproxy.telemetry.logs import configure_access_log

log = logging.getLogger("guardproxy")


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "alive"})


async def readyz(request: Request) -> Response:
    runtime: Runtime = request.app.state.runtime
    if not runtime.ready:
        return JSONResponse({"status": "starting"}, status_code=503)
    policies = runtime.policies
    return JSONResponse({"status": "ready", "policy": policies.digest,
                         "policies": [item.policy.name for item in policies.policies]})


async def _not_found(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 404
    if status == 405:
        return error_response(405, f"Method {request.method} is not allowed on {request.url.path}.",
                              "invalid_request_error", "method_not_allowed")
    return error_response(status, f"Invalid URL ({request.method} {request.url.path})",
                          "invalid_request_error", "unknown_url")


def create_telemetry(settings: Settings, environ: dict[str, str], registry: CollectorRegistry | None,
                     span_exporter: SpanExporter | None = None) -> Telemetry:
    """Metrics on the given registry, else a registry of this app's own (never the
    process-wide default, so several apps can live in one process).
    ``PROMETHEUS_MULTIPROC_DIR``, set by the CLI for ``--workers`` above 1, must also be
    in the process environment before prometheus-client is imported.
    Traces when ``OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT`` is set, or to ``span_exporter`` (tests)."""
    tracing = Tracing.from_environment(environ, settings.trace_content, span_exporter)
    if not settings.metrics:
        return Telemetry(None, tracing=tracing)
    return Telemetry(registry or CollectorRegistry(), environ.get("PROMETHEUS_MULTIPROC_DIR") or None, tracing)


def create_evidence(settings: Settings, environ: dict[str, str], telemetry: Telemetry,
                    runtime: Runtime) -> EvidenceSink:
    """The audit writer (with ``--audit``) and the shadow runner (always: a policy may name a
    shadow on any reload). Errors (an unwritable path, OTLP logs without an endpoint) stop the start."""
    metrics = telemetry.metrics
    writer = None
    if settings.audit:
        also = OtlpAuditLogs(environ) if settings.audit_otlp else None
        writer = AuditWriter(settings.audit, settings.audit_max_bytes, settings.audit_keep,
                             on_drop=metrics.audit_dropped.inc if metrics else None,
                             on_write=metrics.audit_records.inc if metrics else None, also=also)
    shadows = ShadowRunner(runtime.engine, on_drop=metrics.shadow_dropped.inc if metrics else None)
    return EvidenceSink(writer, shadows, metrics)


def create_app(
    settings: Settings, environ: dict[str, str] | None = None, registry: CollectorRegistry | None = None,
    span_exporter: SpanExporter | None = None,
) -> ASGIApp:
    """The whole app: the lean front for the proxied routes (which observes them),
    and Starlette, inside the error containment, for the rest."""
    environ = environ if environ is not None else dict(os.environ)
    tune_allocator()
    telemetry = create_telemetry(settings, environ, registry, span_exporter)
    runtime = Runtime(settings, settings.upstream_keys(environ), telemetry, settings.admin_key(environ))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        runtime.client = create_client(settings.connect_timeout, settings.upstream_timeout,
                                       settings.max_connections)
        runtime.session = create_relay_session(settings.connect_timeout, settings.upstream_timeout,
                                               settings.max_connections)
        stop = asyncio.Event()
        watcher: asyncio.Task[None] | None = None
        stop_metrics = None
        try:
            # With several workers, the CLI's parent process serves the metrics port for all of them.
            if settings.metrics_port and telemetry.registry is not None and not telemetry.multiprocess_dir:
                stop_metrics = start_metrics_listener(settings.host, settings.metrics_port, telemetry.registry)
            await runtime.load_initial()
            runtime.evidence = create_evidence(settings, environ, telemetry, runtime)
            if runtime.evidence.shadows is not None:
                runtime.evidence.shadows.start()
            if settings.watch:
                watcher = asyncio.create_task(runtime.watch(stop))
            runtime.install_sighup()
            yield
        finally:
            stop.set()
            if stop_metrics is not None:
                stop_metrics()
            runtime.remove_sighup()
            if watcher is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.wait_for(watcher, 2)
            await runtime.client.aclose()
            runtime.client = None
            if runtime.session is not None:
                await runtime.session.close()
                runtime.session = None
            if runtime.evidence is not None:
                if runtime.evidence.shadows is not None:
                    await runtime.evidence.shadows.stop()
                if runtime.evidence.writer is not None:
                    await asyncio.to_thread(runtime.evidence.writer.close)
                runtime.evidence = None
            runtime.engine.close()
            telemetry.close()

    routes = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
    ]
    if not settings.metrics_port:  # else on its own listener, and not on the public port
        routes.append(Route("/metrics", metrics_endpoint, methods=["GET"]))
    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers={404: _not_found, 405: _not_found})
    app.state.runtime = runtime
    app.state.telemetry = telemetry
    return ProxyFront(ContainErrors(app), runtime)


def app_from_environment() -> ASGIApp:
    """Factory for uvicorn workers, which get their settings through the environment
    (and, being fresh processes, no logging set-up from the CLI)."""
    settings = settings_from_environment()
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("watchfiles").setLevel(logging.WARNING)
    configure_access_log()
    return create_app(settings)
