"""The fields every completion object and stream chunk carries, and token usage.

All chunks of one stream share id, created, model and system_fingerprint, as
in the real API, so one `CompletionEnvelope` is built per request.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Any

SYSTEM_FINGERPRINT = "fp_demo"


@dataclass(frozen=True)
class CompletionEnvelope:
    completion_id: str
    created: int
    model: str

    @classmethod
    def new(cls, id_prefix: str, model: str) -> CompletionEnvelope:
        return cls(
            completion_id=f"{id_prefix}-{secrets.token_hex(12)}",
            created=int(time.time()),
            model=model,
        )

    def fields(self, object_type: str) -> dict[str, Any]:
        return {
            "id": self.completion_id,
            "object": object_type,
            "created": self.created,
            "model": self.model,
            "system_fingerprint": SYSTEM_FINGERPRINT,
        }


def token_usage(prompt_tokens: int, completion_tokens: int) -> dict[str, Any]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }
