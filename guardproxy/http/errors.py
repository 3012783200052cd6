"""OpenAI-style error responses: ``{"error": {"message", "type", "param", "code"}}``.

Every error the proxy itself produces goes through here, so clients and SDKs
can parse them exactly like the upstream's own errors.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from guardproxy.engine.failures import describe_error

log = logging.getLogger("guardproxy")


def error_body(message: str, type_: str, code: str | None = None, param: str | None = None,
               **extra: Any) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": param, "code": code, **extra}}


def error_response(
    status: int,
    message: str,
    type_: str,
    code: str | None = None,
    param: str | None = None,
    headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> Response:
    body = json.dumps(error_body(message, type_, code, param, **extra)).encode()
    return Response(body, status_code=status, media_type="application/json", headers=dict(headers or {}))


class ClientError(Exception):
    """A problem with the client's request, answered with a 4xx OpenAI-style error."""

    def __init__(self, status: int, message: str, code: str, param: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.param = param

    def response(self, headers: Mapping[str, str] | None = None) -> Response:
        return error_response(self.status, self.message, "invalid_request_error", self.code, self.param, headers)


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
