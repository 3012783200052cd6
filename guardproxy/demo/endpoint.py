"""The steps every demo route shares before and after it builds its answer.

`demo_endpoint` records the request, applies the `x-demo-*` test controls
(delay, required key, simulated status), parses the JSON body and stamps the
response headers the real API always sends. Route handlers only see a
`DemoCall` and either return a response or raise `DemoRequestError`.

What differs between the APIs the demo speaks (which header carries the key,
what an error body looks like, which request-id header is sent) is one
`WireConventions` value per API, so a handler never knows which API it serves.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import Response

from guardproxy.demo.errors import (
    DemoRequestError,
    invalid_api_key_error,
    invalid_json_error,
    invalid_parameter_error,
    missing_parameter_error,
    simulated_status_error,
)
from guardproxy.demo.recorder import DemoRecorder, RecordedRequest

DELAY_HEADER = "x-demo-delay-ms"
CHUNK_DELAY_HEADER = "x-demo-chunk-delay-ms"
STATUS_HEADER = "x-demo-status"
REQUIRE_KEY_HEADER = "x-demo-require-key"

_MAX_CHOICES = 128


@dataclass(frozen=True)
class DemoCall:
    """A request that passed the shared checks; `body` is {} for routes without JSON."""

    request: Request
    body: dict[str, Any]
    recorder: DemoRecorder

    @property
    def headers(self) -> Headers:
        return self.request.headers

    def required(self, param: str) -> Any:
        value = self.body.get(param)
        if value is None:
            raise missing_parameter_error(param)
        return value

    def model(self) -> str:
        model = self.required("model")
        if not isinstance(model, str) or not model:
            raise invalid_parameter_error("model", "Invalid type for 'model': expected a string.")
        return model

    def wants_stream(self) -> bool:
        stream = self.body.get("stream", False)
        if stream is not None and not isinstance(stream, bool):
            raise invalid_parameter_error("stream", "Invalid type for 'stream': expected a boolean.")
        return bool(stream)

    def wants_stream_usage(self) -> bool:
        options = self.body.get("stream_options")
        return isinstance(options, dict) and options.get("include_usage") is True

    def choice_count(self) -> int:
        count = self.body.get("n")
        if count is None:
            return 1
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= _MAX_CHOICES:
            raise invalid_parameter_error("n", f"Invalid value for 'n': expected an integer from 1 to {_MAX_CHOICES}.")
        return count

    def texts_or_token_lists(self, param: str) -> list[str | list[int]]:
        """`param` as one entry per item: a string, strings, a token list or token lists."""
        value = self.required(param)
        if isinstance(value, str):
            return [value]
        if isinstance(value, list) and value:
            if all(isinstance(item, str) for item in value):
                return list(value)
            if all(_is_token_list(item) for item in value):
                return list(value)
            if _is_token_list(value):
                return [value]
        raise invalid_parameter_error(
            param,
            f"Invalid value for '{param}': expected a string, an array of strings, "
            "an array of tokens or an array of token arrays.",
        )

    def chunk_delay_seconds(self) -> float:
        return milliseconds_header(self.headers, CHUNK_DELAY_HEADER)


Handler = Callable[[DemoCall], Awaitable[Response]]
Endpoint = Callable[[Request], Awaitable[Response]]


def _own_error_response(error: DemoRequestError) -> Response:
    return error.to_response()


def _bearer_key_check(headers: Headers, required_key: str) -> None:
    authorization = headers.get("authorization")
    if authorization != f"Bearer {required_key}":
        raise invalid_api_key_error(authorization)


@dataclass(frozen=True)
class WireConventions:
    """How one API authenticates, shapes its errors and names its request id.

    `check_key(headers, required_key)` raises when the request does not carry
    `required_key` (from `x-demo-require-key`) where that API expects its key;
    `error_response` turns any `DemoRequestError` into that API's error body.
    """

    check_key: Callable[[Headers, str], None] = _bearer_key_check
    error_response: Callable[[DemoRequestError], Response] = _own_error_response
    request_id_header: str = "x-request-id"


OPENAI_CONVENTIONS = WireConventions()


def demo_endpoint(
    handler: Handler,
    recorder: DemoRecorder,
    *,
    parses_json: bool,
    conventions: WireConventions = OPENAI_CONVENTIONS,
) -> Endpoint:
    """Wrap `handler` with recording, the `x-demo-*` controls and the standard headers."""

    async def endpoint(request: Request) -> Response:
        started = time.monotonic()
        raw_body = await request.body()
        parsed_json = _parse_json(raw_body)
        recorder.record(
            RecordedRequest(
                method=request.method,
                path=request.url.path,
                headers=_lower_cased_headers(request),
                body=raw_body,
                json=parsed_json,
            )
        )
        try:
            await asyncio.sleep(milliseconds_header(request.headers, DELAY_HEADER))
            required_key = request.headers.get(REQUIRE_KEY_HEADER)
            if required_key is not None:
                conventions.check_key(request.headers, required_key)
            _raise_simulated_status(request.headers)
            body = _json_object(raw_body, parsed_json) if parses_json else {}
            response = await handler(DemoCall(request=request, body=body, recorder=recorder))
        except DemoRequestError as error:
            response = conventions.error_response(error)
        response.headers[conventions.request_id_header] = "req_" + secrets.token_hex(16)
        response.headers["openai-processing-ms"] = str(int((time.monotonic() - started) * 1000))
        return response

    return endpoint


def milliseconds_header(headers: Headers, name: str) -> float:
    """A non-negative `name: <ms>` header as seconds; 0 when absent."""
    value = headers.get(name)
    if value is None:
        return 0.0
    try:
        milliseconds = float(value)
    except ValueError:
        milliseconds = -1.0
    if not milliseconds >= 0:
        raise DemoRequestError(400, f"Header {name} must be a non-negative number of milliseconds.")
    return milliseconds / 1000


def _is_token_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(token, int) and not isinstance(token, bool) for token in value)


def _parse_json(raw_body: bytes) -> Any | None:
    if not raw_body:
        return None
    try:
        return json.loads(raw_body)
    except ValueError:
        return None


def _json_object(raw_body: bytes, parsed_json: Any | None) -> dict[str, Any]:
    if parsed_json is None and raw_body.strip() != b"null":
        raise invalid_json_error()
    if not isinstance(parsed_json, dict):
        raise DemoRequestError(400, "Invalid type for request body: expected a JSON object.")
    return parsed_json


def _lower_cased_headers(request: Request) -> dict[str, str]:
    headers: dict[str, str] = {}
    for raw_name, raw_value in request.headers.raw:
        name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return headers


def _raise_simulated_status(headers: Headers) -> None:
    value = headers.get(STATUS_HEADER)
    if value is None:
        return
    try:
        status_code = int(value)
    except ValueError:
        status_code = 0
    if not 400 <= status_code <= 599:
        raise DemoRequestError(400, f"Header {STATUS_HEADER} must be an HTTP error status (400-599).")
    raise simulated_status_error(status_code)
