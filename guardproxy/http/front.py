"""The front door: proxied routes go straight to their lean ASGI handlers; every
other path (health, readiness, metrics, unknown URLs) to the Starlette app.

Routing here is two dictionary look-ups and a prefix test, instead of matching
the request against every route's pattern. The front also opens and reports each
proxied request's telemetry and contains its errors, which on these routes saves
two ``send`` wrappers per message.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from guardproxy.engine.failures import describe_error
from guardproxy.http.check_api import guardrails_check
from guardproxy.http.errors import error_response
from guardproxy.http.exchange import ClientDisconnected, Exchange
from guardproxy.http.runtime import Runtime
from guardproxy.proxy.handlers import ENDPOINTS, Reply, guarded, passthrough
from guardproxy.telemetry import RequestObserver
from guardproxy.telemetry.response_watch import ResponseWatch

log = logging.getLogger("guardproxy")

Handler = Callable[[Runtime, Exchange], Awaitable[Reply]]
CHECK_PATH = "/v1/guardrails/check"
CLIENT_CLOSED = 499  # nginx's status for a request whose client left before the answer


class ProxyFront:
    def __init__(self, app: ASGIApp, runtime: Runtime, observer: RequestObserver) -> None:
        self.app = app
        self.runtime = runtime
        self.observer = observer

    @staticmethod
    def handler_for(method: str, path: str) -> Handler | None:
        if path in ENDPOINTS:
            return guarded if method == "POST" else passthrough
        if path == CHECK_PATH:
            return guardrails_check if method == "POST" else _check_method_not_allowed
        if path.startswith("/v1/"):
            return passthrough
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        handler = self.handler_for(scope["method"], scope["path"]) if scope["type"] == "http" else None
        if handler is None:
            await self.app(scope, receive, send)
            return
        record, watch = self.observer.open(scope)
        status = 500
        try:
            try:
                reply = await handler(self.runtime, Exchange(scope, receive, send))
            except ClientDisconnected:
                status = CLIENT_CLOSED
                return
            except Exception as exc:  # last line of defence: an OpenAI-style 500, never a traceback
                log.error("unhandled %s on %s %s", describe_error(exc), scope["method"], scope["path"])
                reply = error_response(500, "The proxy failed to handle this request.", "server_error",
                                       "proxy_error")
            status = reply.status_code
            try:
                await _answer(reply, scope, receive, send, watch)
            except Exception as exc:  # the answer has started: nothing is left to send but the end
                log.error("unhandled %s while answering %s %s", describe_error(exc), scope["method"], scope["path"])
        finally:
            self.observer.close(record, status, watch)


async def _answer(reply: Reply, scope: Scope, receive: Receive, send: Send, watch: ResponseWatch | None) -> None:
    if isinstance(reply, Response):
        if watch is not None:
            watch.start(reply.raw_headers)
            watch.body(bytes(reply.body))
        await reply(scope, receive, send)
        return
    await reply.answer(receive, send, watch)


async def _check_method_not_allowed(runtime: Runtime, ex: Exchange) -> Reply:
    return error_response(405, f"Method {ex.method} is not allowed on {ex.path}.", "invalid_request_error",
                          "method_not_allowed")
