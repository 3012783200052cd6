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


_LOGGER = logging.getLogger(ACCESS_LOGGER)
OFF, NOW, BATCHED = 0, 1, 2


def access_mode() -> int:
    """``OFF`` below INFO; ``BATCHED`` under ``guardproxy serve`` (its own handler, no
    filters), where lines are written in batches (``write_access_lines``); ``NOW``
    anywhere else (tests, an embedding application): through logging, one record a line."""
    logger = _LOGGER
    if not logger.isEnabledFor(logging.INFO):
        return OFF
    return BATCHED if _own_handler(logger) is not None and not logger.filters else NOW


def access_line(fields: dict[str, Any]) -> None:
    """One line now, through logging (``NOW``), or straight to the handler's stream."""
    mode = access_mode()
    if mode == OFF:
        return
    line = orjson.dumps(fields)
    if mode == BATCHED:
        write_access_lines([line])
        return
    _LOGGER.info(line.decode())


def write_access_lines(lines: list[bytes]) -> None:
    """Lines in one write to the serve handler's stream: a LogRecord per request costs
    more than the line itself, and a write per line costs a system call each."""
    handler = _own_handler(_LOGGER)
    if handler is None or not lines:
        return
    with handler.lock or contextlib.nullcontext():
        handler.stream.write(b"\n".join(lines).decode() + "\n")
        handler.stream.flush()


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
