"""How the Anthropic API authenticates and what its error bodies look like.

Anthropic routes answer every failure as `{"type": "error", "error": {"type",
"message"}}`, the error type following from the status code, and take their key
from `x-api-key` or, as the anthropic SDK 2.x sends it, `Authorization: Bearer`
(the real API accepts both). Handlers raise the same `DemoRequestError` as everywhere else;
`ANTHROPIC_CONVENTIONS` renders it, so the anthropic SDK raises its own
exception classes (`AuthenticationError`, `BadRequestError`, ...).
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.responses import JSONResponse

from guardproxy.demo.endpoint import WireConventions
from guardproxy.demo.errors import DemoRequestError

API_KEY_HEADER = "x-api-key"

_ERROR_TYPE_BY_STATUS = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}


def anthropic_error_type(status_code: int) -> str:
    """The `error.type` Anthropic sends with `status_code`."""
    known = _ERROR_TYPE_BY_STATUS.get(status_code)
    if known is not None:
        return known
    return "api_error" if status_code >= 500 else "invalid_request_error"


def anthropic_error_response(error: DemoRequestError) -> JSONResponse:
    body = {"type": "error", "error": {"type": anthropic_error_type(error.status_code), "message": error.message}}
    return JSONResponse(body, status_code=error.status_code, headers=error.headers)


def not_found_error() -> DemoRequestError:
    return DemoRequestError(404, "Not Found")


def _check_anthropic_key(headers: Headers, required_key: str) -> None:
    key = headers.get(API_KEY_HEADER)
    authorization = headers.get("authorization")
    if key is None and authorization is None:
        raise DemoRequestError(401, f"{API_KEY_HEADER} header is required")
    if required_key not in (key, (authorization or "").removeprefix("Bearer ")):
        raise DemoRequestError(401, f"invalid {API_KEY_HEADER}")


ANTHROPIC_CONVENTIONS = WireConventions(
    check_key=_check_anthropic_key,
    error_response=anthropic_error_response,
    request_id_header="request-id",
)
