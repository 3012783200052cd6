"""OpenAI-style errors: ``{"error": {"message", "type", "param", "code"}}``.

Every error the proxy itself produces on an OpenAI-shaped route goes through
here, so clients and SDKs parse them exactly like the upstream's own errors.
"""

from __future__ import annotations

from typing import Any

from guardproxy.proxy.reply import RawHeaders, Reply


def error_body(message: str, type_: str, code: str | None = None, param: str | None = None,
               **extra: Any) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": param, "code": code, **extra}}


def error_reply(status: int, message: str, type_: str, code: str | None = None, param: str | None = None,
                headers: RawHeaders | None = None, **extra: Any) -> Reply:
    return Reply.json(status, error_body(message, type_, code, param, **extra), headers)


class ClientError(Exception):
    """A problem with the client's request, answered with a 4xx OpenAI-style error."""

    def __init__(self, status: int, message: str, code: str, param: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.param = param

    def reply(self, headers: RawHeaders | None = None) -> Reply:
        return error_reply(self.status, self.message, "invalid_request_error", self.code, self.param, headers)
