"""Opening a request's record and reporting it when the response has ended: for a
stream, after its last byte, or when the client left.

The proxy's front calls it around each proxied request, and hands the
``ResponseWatch`` to the reply, which shows it what leaves. No ASGI ``send`` is
wrapped: every wrapper is a coroutine call per message on the hot path.
"""

from __future__ import annotations

from starlette.types import Scope

from guardproxy.telemetry.facade import Telemetry
from guardproxy.telemetry.labels import route_of
from guardproxy.telemetry.record import SCOPE_KEY, RequestTelemetry
from guardproxy.telemetry.response_watch import ResponseWatch

_STREAMED_ROUTES = frozenset({"chat", "completions"})
_USAGE_ROUTES = frozenset({"chat", "completions", "embeddings"})


class RequestObserver:
    def __init__(self, telemetry: Telemetry) -> None:
        self.telemetry = telemetry

    def open(self, scope: Scope) -> tuple[RequestTelemetry, ResponseWatch | None]:
        """The request's record (in the scope, for the handlers) and, when anything
        is observed, the watch its reply must be shown."""
        route = route_of(scope["path"]) or "passthrough"
        if not self.telemetry.enabled:
            record = RequestTelemetry(None, route)
            scope[SCOPE_KEY] = record
            return record, None
        record = RequestTelemetry(self.telemetry, route)
        if self.telemetry.tracing is not None:
            record.trace = self.telemetry.tracing.start_request(scope, route)
        scope[SCOPE_KEY] = record
        return record, ResponseWatch(route in _STREAMED_ROUTES, route in _USAGE_ROUTES)

    def close(self, record: RequestTelemetry, status: int, watch: ResponseWatch | None) -> None:
        if watch is not None:
            self.telemetry.request_finished(record, status, watch)
