"""Structured request logs: one JSON line per request on the ``guardproxy.access``
logger. Ids, verdict, what fired (guard names and labels), timings. Never request
or answer text, never keys: the record holds none."""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

ACCESS_LOGGER = "guardproxy.access"


def access_line(fields: dict[str, Any]) -> None:
    logger = logging.getLogger(ACCESS_LOGGER)
    if logger.isEnabledFor(logging.INFO):
        logger.info(json.dumps(fields, separators=(",", ":")))


def configure_access_log() -> None:
    """For ``guardproxy serve``: the access logger writes bare JSON lines to stderr,
    not through the human-readable root format."""
    logger = logging.getLogger(ACCESS_LOGGER)
    if any(getattr(h, "_guardproxy_access", False) for h in logger.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    handler._guardproxy_access = True  # type: ignore[attr-defined]
    logger.addHandler(handler)
    logger.propagate = False  # its level still follows --log-level through the root logger
