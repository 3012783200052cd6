"""What a redacted value becomes: ``<PERSON_1>``, ``<PERSON>``, ``****`` or a salted hash.

Placeholders are numbered per entity type by first appearance across all the
segments of one request, and the same value always gets the same placeholder.
Clients resend the whole history every turn, so numbers stay stable from turn to
turn. Nothing here outlives the request: no vault, no state shared between
concurrent requests.
"""

from __future__ import annotations

import hashlib
import hmac
import re

PLACEHOLDER = re.compile(r"<([A-Z][A-Z0-9_]*?)(?:_(\d+))?>")


class PlaceholderNumbering:
    """One request's numbering: (entity, value) -> ``<ENTITY_n>``."""

    def __init__(self) -> None:
        self._assigned: dict[tuple[str, str], str] = {}
        self._counts: dict[str, int] = {}

    def placeholder(self, entity: str, value: str) -> str:
        key = (entity, value)
        existing = self._assigned.get(key)
        if existing is not None:
            return existing
        self._counts[entity] = self._counts.get(entity, 0) + 1
        placeholder = f"<{entity}_{self._counts[entity]}>"
        self._assigned[key] = placeholder
        return placeholder


def salted_hash(value: str, salt: bytes, entity: str) -> str:
    digest = hmac.new(salt, value.encode(), hashlib.sha256).hexdigest()[:12]
    return f"<{entity}:{digest}>"


MASK = "****"
