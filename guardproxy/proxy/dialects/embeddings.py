"""``POST /v1/embeddings``: ``input`` is checked; the answer is vectors, with no text to guard."""

from __future__ import annotations

from typing import Any

from guardproxy.guards.base import Segment
from guardproxy.proxy.dialects.base import Dialect
from guardproxy.proxy.dialects.json_paths import string_segments


class EmbeddingsDialect(Dialect):
    name = "embeddings"
    path = "/v1/embeddings"
    operation = "embeddings"
    required = "input"
    usage_fields = {"prompt_tokens": "input"}

    def request_segments(self, payload: dict[str, Any]) -> list[Segment]:
        return list(string_segments(payload.get("input"), ("input",)))
