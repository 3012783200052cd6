"""Guards: the contract every guard implements (``base.py``), the registry that
finds guard types by name (``registry.py``) without importing them, and the one
module a guard author imports (``api.py``)."""

from __future__ import annotations

from guardproxy.guards.base import (
    Finding,
    Guard,
    GuardConfig,
    GuardContext,
    GuardKind,
    Segment,
    Stage,
    UpstreamCallError,
    UpstreamClient,
)
from guardproxy.guards.registry import REGISTRY, GuardType

__all__ = [
    "REGISTRY", "Finding", "Guard", "GuardConfig", "GuardContext", "GuardKind", "GuardType", "Segment", "Stage",
    "UpstreamCallError", "UpstreamClient",
]
