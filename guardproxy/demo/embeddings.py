"""`POST /v1/embeddings`: deterministic unit vectors derived from sha256 of the input.

The same input always gets the same vector, so tests can compare embeddings
across calls. `encoding_format: base64` (little-endian float32) matters: the
openai SDK asks for it by default and decodes it itself.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import struct
from typing import Any

from starlette.responses import JSONResponse, Response

from guardproxy.demo.endpoint import DemoCall
from guardproxy.demo.errors import invalid_parameter_error

DEFAULT_DIMENSIONS = 16
_MAX_DIMENSIONS = 4096
_ENCODING_FORMATS = ("float", "base64")


async def embeddings(call: DemoCall) -> Response:
    model = call.model()
    inputs = call.texts_or_token_lists("input")
    if any(not item for item in inputs):
        raise invalid_parameter_error("input", "Invalid value for 'input': items must not be empty.")
    dimensions = _dimensions(call.body.get("dimensions"))
    encoding_format = call.body.get("encoding_format") or "float"
    if encoding_format not in _ENCODING_FORMATS:
        raise invalid_parameter_error(
            "encoding_format", "Invalid value for 'encoding_format': expected 'float' or 'base64'."
        )

    data = []
    for index, item in enumerate(inputs):
        vector = embedding_vector(item, dimensions)
        encoded: list[float] | str = (
            base64.b64encode(struct.pack(f"<{dimensions}f", *vector)).decode("ascii")
            if encoding_format == "base64"
            else vector
        )
        data.append({"object": "embedding", "index": index, "embedding": encoded})

    prompt_tokens = sum(len(item) if isinstance(item, list) else len(item.split()) for item in inputs)
    usage = {"prompt_tokens": max(1, prompt_tokens), "total_tokens": max(1, prompt_tokens)}
    return JSONResponse({"object": "list", "data": data, "model": model, "usage": usage})


def embedding_vector(item: str | list[int], dimensions: int) -> list[float]:
    """An L2-normalised vector determined by `item` (text or tokens) and `dimensions`."""
    seed = item.encode("utf-8") if isinstance(item, str) else json.dumps(item).encode("ascii")
    raw: list[float] = []
    block = 0
    while len(raw) < dimensions:
        digest = hashlib.sha256(seed + block.to_bytes(4, "little")).digest()
        raw.extend(word / 0x7FFFFFFF - 1.0 for (word,) in struct.iter_unpack("<I", digest))
        block += 1
    raw = raw[:dimensions]
    norm = math.sqrt(sum(value * value for value in raw)) or 1.0
    return [value / norm for value in raw]


def _dimensions(value: Any) -> int:
    if value is None:
        return DEFAULT_DIMENSIONS
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= _MAX_DIMENSIONS:
        raise invalid_parameter_error(
            "dimensions",
            f"Invalid value for 'dimensions': expected an integer from 1 to {_MAX_DIMENSIONS}.",
        )
    return value
