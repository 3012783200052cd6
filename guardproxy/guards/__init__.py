"""Guards: the contract every guard implements (``base.py``) and the registry
that finds guard types by name (``registry.py``) without importing them."""

from __future__ import annotations

from guardproxy.guards.base import (
    Finding,
    Guard,
    GuardConfig,
    GuardContext,
    Segment,
    Stage,
    UpstreamCallError,
    UpstreamClient,
)
from guardproxy.guards.registry import REGISTRY, GuardType

__all__ = [
    "REGISTRY", "Finding", "Guard", "GuardConfig", "GuardContext", "GuardType", "Segment", "Stage",
    "UpstreamCallError", "UpstreamClient",
]
