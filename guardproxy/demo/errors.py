"""OpenAI-shaped error responses for the demo upstream.

Every failure leaves the demo upstream as `{"error": {"message", "type",
"param", "code"}}` with the status code the real API would use, so the proxy
and the openai SDK see exactly what production would send them.
"""

from __future__ import annotations

from collections.abc import Mapping

from starlette.responses import JSONResponse

_INVALID_REQUEST = "invalid_request_error"

_INVALID_JSON_MESSAGE = (
    "We could not parse the JSON body of your request. (HINT: This likely means you aren't "
    "using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was "
    "sent was not valid JSON.)"
)


class DemoRequestError(Exception):
    """Raised anywhere while answering a request; becomes an OpenAI error response."""

    def __init__(
        self,
        status_code: int,
        message: str,
        *,
        error_type: str = _INVALID_REQUEST,
        param: str | None = None,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message
        self.error_type = error_type
        self.param = param
        self.code = code
        self.headers = dict(headers or {})

    def to_response(self) -> JSONResponse:
        body = {
            "error": {
                "message": self.message,
                "type": self.error_type,
                "param": self.param,
                "code": self.code,
            }
        }
        return JSONResponse(body, status_code=self.status_code, headers=self.headers)


def invalid_json_error() -> DemoRequestError:
    return DemoRequestError(400, _INVALID_JSON_MESSAGE)


def missing_parameter_error(param: str) -> DemoRequestError:
    return DemoRequestError(
        400,
        f"Missing required parameter: '{param}'.",
        param=param,
        code="missing_required_parameter",
    )


def invalid_parameter_error(param: str, message: str) -> DemoRequestError:
    return DemoRequestError(400, message, param=param, code="invalid_value")


def unknown_url_error(method: str, path: str) -> DemoRequestError:
    return DemoRequestError(404, f"Invalid URL ({method} {path})", code="unknown_url")


def model_not_found_error(model_id: str) -> DemoRequestError:
    return DemoRequestError(
        404,
        f"The model `{model_id}` does not exist or you do not have access to it.",
        param="model",
        code="model_not_found",
    )


def invalid_api_key_error(authorization: str | None) -> DemoRequestError:
    if not authorization:
        message = (
            "You didn't provide an API key. You need to provide your API key in an "
            "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
        )
    else:
        shown_key = authorization.removeprefix("Bearer ").strip()
        message = f"Incorrect API key provided: {_mask_key(shown_key)}."
    return DemoRequestError(401, message, code="invalid_api_key")


def simulated_status_error(status_code: int) -> DemoRequestError:
    """The error the real API sends for `status_code` (requested via `x-demo-status`)."""
    if status_code == 400:
        return DemoRequestError(400, "Simulated bad request (x-demo-status: 400).")
    if status_code == 401:
        return invalid_api_key_error("Bearer sk-demo-simulated")
    if status_code == 403:
        return DemoRequestError(
            403,
            "Country, region, or territory not supported",
            code="unsupported_country_region_territory",
        )
    if status_code == 404:
        return model_not_found_error("simulated-missing-model")
    if status_code == 429:
        return DemoRequestError(
            429,
            "Rate limit reached for demo on requests per min (RPM): Limit 3, Used 3, "
            "Requested 1. Please try again in 7s.",
            error_type="rate_limit_error",
            code="rate_limit_exceeded",
            headers={"retry-after": "7", "x-ratelimit-remaining-requests": "0"},
        )
    if status_code == 503:
        return DemoRequestError(
            503,
            "The engine is currently overloaded, please try again later.",
            error_type="server_error",
        )
    if status_code >= 500:
        return DemoRequestError(
            status_code,
            "The server had an error while processing your request. Sorry about that!",
            error_type="server_error",
        )
    return DemoRequestError(status_code, f"Simulated error (x-demo-status: {status_code}).")


def _mask_key(key: str) -> str:
    """Show only the ends of a key, like the real API does in its 401 message."""
    if len(key) <= 8:
        return "*" * len(key)
    return f"{key[:3]}{'*' * (len(key) - 7)}{key[-4:]}"
