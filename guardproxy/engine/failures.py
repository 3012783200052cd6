"""Describing an exception without its message, for logs, metrics and guard failures."""

from __future__ import annotations

import traceback
from pathlib import Path


def describe_error(exc: BaseException) -> str:
    """The exception type and where it was raised, never its message: messages
    often quote the input, which may hold personal data or keys."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" at {Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else ""
    return f"{type(exc).__name__}{where}"
