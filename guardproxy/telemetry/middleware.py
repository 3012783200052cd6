"""The ASGI middleware that opens a request's record and reports it when the
response has ended: for a stream, after its last byte, or when the client left."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from guardproxy.telemetry.facade import Telemetry
from guardproxy.telemetry.labels import route_of
from guardproxy.telemetry.record import SCOPE_KEY, RequestTelemetry
from guardproxy.telemetry.response_watch import ResponseWatch

_STREAMED_ROUTES = frozenset({"chat", "completions"})
_USAGE_ROUTES = frozenset({"chat", "completions", "embeddings"})


class RequestMetrics:
    def __init__(self, app: ASGIApp, telemetry: Telemetry) -> None:
        self.app = app
        self.telemetry = telemetry

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = route_of(scope["path"]) if scope["type"] == "http" else None
        if route is None or not self.telemetry.enabled:
            await self.app(scope, receive, send)
            return
        record = RequestTelemetry(self.telemetry, route)
        if self.telemetry.tracing is not None:
            record.trace = self.telemetry.tracing.start_request(scope, route)
        scope[SCOPE_KEY] = record
        watch = ResponseWatch(route in _STREAMED_ROUTES, route in _USAGE_ROUTES)
        status = 500  # if the app fails before answering, the error handler's status

        async def observing_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                watch.start(message.get("headers", []))
            elif message["type"] == "http.response.body":
                watch.body(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, observing_send)
        finally:
            self.telemetry.request_finished(record, status, watch)
