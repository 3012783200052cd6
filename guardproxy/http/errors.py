"""Errors outside the proxied routes, and the last line of defence around the app."""

from __future__ import annotations

import logging

import orjson
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from guardproxy.engine.failures import describe_error
from guardproxy.proxy.errors import error_body

log = logging.getLogger("guardproxy")


def error_response(status: int, message: str, type_: str, code: str | None = None) -> Response:
    """An OpenAI-style error for the Starlette routes (health, metrics, unknown URLs)."""
    return Response(orjson.dumps(error_body(message, type_, code)), status_code=status, media_type="application/json")


class ContainErrors:
    """Last line of defence: an unexpected exception becomes an OpenAI-style 500
    and a log line without the exception's message, never a traceback."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            log.error("unhandled %s on %s %s", describe_error(exc), scope.get("method"), scope.get("path"))
            if not started:
                response = error_response(500, "The proxy failed to handle this request.", "server_error",
                                          "proxy_error")
                await response(scope, receive, send)
