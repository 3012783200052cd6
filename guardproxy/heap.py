"""The process's memory: glibc's allocator settings and the garbage collector.

Guards allocate large, short-lived buffers (the embedding model's activations
for a batch of long windows are tens of MB). glibc serves an allocation above
its mmap threshold with its own mapping, returned to the OS on free, but raises
that threshold to the largest block freed so far, after which such buffers come
from the heap and their pages stay with the process; each guard thread also
gets a heap arena of its own. Fixing the threshold and capping the arenas kept a
worker that had seen 20,000-character prompts at 527 MB instead of 866.
"""

from __future__ import annotations

import ctypes
import gc
import logging

log = logging.getLogger("guardproxy")

_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameters (malloc.h)
_M_ARENA_MAX = -8
MMAP_THRESHOLD = 256 * 1024
ARENA_MAX = 2


def tune_allocator() -> bool:
    """Call before guard threads start; whether the options took. glibc only: elsewhere nothing happens."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    if libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) and libc.mallopt(_M_ARENA_MAX, ARENA_MAX):
        return True
    log.warning("could not set glibc's malloc options; memory freed by guards may stay with the process")
    return False


def settle_heap() -> None:
    """Move everything loaded so far (models, recognizers, modules) out of the cyclic
    garbage collector's sight. A full collection over a loaded PII, topics and
    toxicity stack takes 30 to 40 ms and stops the event loop while it runs: a p99
    spike for every request in flight.

    Call it once, after start-up: frozen objects are never collected as cycles. Most of
    what start-up loads lives as long as the process; a guard instance a later reload
    drops is freed by reference counting (the built-in guards build no reference cycles),
    though a cycle inside one would stay until the process ends. Freezing again after a
    reload would also pin whatever the requests in flight hold at that moment, for good."""
    gc.collect()
    gc.freeze()
