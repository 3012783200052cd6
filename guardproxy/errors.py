"""OpenAI-style error responses: ``{"error": {"message", "type", "param", "code"}}``.

Every error the proxy itself produces goes through here, so clients and SDKs
can parse them exactly like the upstream's own errors.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from starlette.responses import Response


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
