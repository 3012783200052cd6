"""Abandoned scans stop early instead of running to their end unobserved.

When the engine stops waiting for a scan (it overran its timeout, or the request
ended), the thread running it cannot be interrupted. Left alone it would finish
the work for nobody: a 20,000-character prompt past its timeout kept the guard
pool busy for half a minute, and every request behind it waited. So the pool
runs each scan under its own ``threading.Event`` (``abandonable``), sets it when
it gives up on the scan, and long guard loops call ``raise_if_abandoned()``
between their units of work (embedding runs, NER documents), which ends the
scan with ``ScanAbandoned``. Outside a pool scan the check does nothing.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

_current = threading.local()


class ScanAbandoned(Exception):
    """The engine no longer waits for this scan; its result would be thrown away."""


@contextmanager
def abandonable(event: threading.Event) -> Iterator[None]:
    """Run the body as a scan that ``event`` abandons (one thread, nested calls restore the outer one)."""
    outer = getattr(_current, "event", None)
    _current.event = event
    try:
        yield
    finally:
        _current.event = outer


def raise_if_abandoned() -> None:
    event: threading.Event | None = getattr(_current, "event", None)
    if event is not None and event.is_set():
        raise ScanAbandoned
