"""A guarded request's body: parsed once into the payload the guards read, and the
proxy's own request field (``guardproxy: {context: [...]}``) taken out of it."""

from __future__ import annotations

from typing import Any

from guardproxy import json_codec
from guardproxy.proxy.dialects import Dialect, RequestShapeError
from guardproxy.proxy.errors import ClientError

EXTENSION_FIELD = "guardproxy"


def parse_payload(body: bytes, dialect: Dialect, content_encoding: str | None) -> dict[str, Any]:
    if content_encoding and content_encoding.lower() != "identity":
        raise ClientError(415, "Compressed request bodies are not supported.", "unsupported_content_encoding")
    try:
        payload = json_codec.loads(body)
    except ValueError as exc:  # not JSON, invalid UTF-8, a lone surrogate, a depth bomb
        reason = str(exc) if "nested" in str(exc) or "surrogate" in str(exc) else "it is not valid JSON in UTF-8"
        raise ClientError(400, f"We could not parse the JSON body of your request: {reason}.", "invalid_json") from None
    if not isinstance(payload, dict):
        raise ClientError(400, "The request body must be a JSON object.", "invalid_json")
    try:
        dialect.check_request(payload)
    except RequestShapeError as exc:
        raise ClientError(400, exc.message, exc.code, exc.param) from None
    return payload


def take_extension(payload: dict[str, Any]) -> tuple[str, ...]:
    """Remove the proxy's own request field, ``guardproxy: {context: [..]}``, so the
    upstream never sees it, and return the documents it carries."""
    extension = payload.pop(EXTENSION_FIELD)
    if not isinstance(extension, dict) or set(extension) - {"context"}:
        raise ClientError(400, "'guardproxy' must be an object with the key 'context'.", "invalid_extension",
                          EXTENSION_FIELD)
    documents = extension.get("context", [])
    if not isinstance(documents, list) or not all(isinstance(d, str) for d in documents):
        raise ClientError(400, "'guardproxy.context' must be an array of strings.", "invalid_extension",
                          "guardproxy.context")
    return tuple(documents)
