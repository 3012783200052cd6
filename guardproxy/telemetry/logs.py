"""Structured request logs: one JSON line per request on the ``guardproxy.access``
logger. Ids, verdict, what fired (guard names and labels), timings. Never request
or answer text, never keys: the record holds none."""

from __future__ import annotations

import contextlib
import logging
import sys
from typing import Any, TextIO

import orjson

ACCESS_LOGGER = "guardproxy.access"


def access_line(fields: dict[str, Any]) -> None:
    logger = logging.getLogger(ACCESS_LOGGER)
    if not logger.isEnabledFor(logging.INFO):
        return
    line = orjson.dumps(fields)
    handler = _own_handler(logger)
    if handler is not None and not logger.filters:
        # Under ``guardproxy serve`` the line goes straight to the handler's stream: a
        # LogRecord per request costs more than the line itself. Anywhere else (tests,
        # an embedding application), it goes through logging as usual.
        with handler.lock or contextlib.nullcontext():
            handler.stream.write(line.decode() + "\n")
        return
    logger.info(line.decode())


def _own_handler(logger: logging.Logger) -> logging.StreamHandler[TextIO] | None:
    if len(logger.handlers) == 1 and getattr(logger.handlers[0], "_guardproxy_access", False):
        return logger.handlers[0]  # type: ignore[return-value]
    return None


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
