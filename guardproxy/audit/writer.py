"""Writing audit records off the request path: a bounded queue drained by one thread.

The request path only puts a job on the queue (``submit``, never blocking). The job builds
its record's JSON line in the writer thread, so even that work leaves the event loop. A full
queue drops the job and counts it (``guardproxy_audit_dropped_total``): losing a record is
better than slowing every request. The target is a file, rotated by size with a bounded number
of older files kept (``PATH.1`` the newest of them), or ``-`` for standard output; each line
may also go out as an OpenTelemetry log record.
"""

from __future__ import annotations

import logging
import os
import queue
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import IO, Protocol

log = logging.getLogger("guardproxy.audit")

Job = Callable[[], str | None]  # builds one record's JSON line; None: nothing to write
DEFAULT_MAX_BYTES = 100 * 1024 * 1024
DEFAULT_KEEP = 5
DEFAULT_QUEUE = 10_000
_STOP = object()


class LineSink(Protocol):
    """Where a written line also goes (an OpenTelemetry logger)."""

    def emit(self, line: str) -> None: ...

    def close(self) -> None: ...


class AuditWriter:
    def __init__(self, target: str, max_bytes: int = DEFAULT_MAX_BYTES, keep: int = DEFAULT_KEEP,
                 queue_size: int = DEFAULT_QUEUE, on_drop: Callable[[], None] | None = None,
                 on_write: Callable[[], None] | None = None, also: LineSink | None = None) -> None:
        if max_bytes < 1024:
            raise ValueError("--audit-max-bytes must be at least 1024")
        if keep < 1:
            raise ValueError("--audit-keep must be at least 1")
        self.target = target
        self._max_bytes = max_bytes
        self._keep = keep
        self._queue: queue.Queue[object] = queue.Queue(queue_size)
        self._on_drop = on_drop
        self._on_write = on_write
        self._also = also
        self.dropped = 0
        self.written = 0
        self._stream: IO[str] | None = None
        self._size = 0
        self._open()  # an unwritable path fails at start-up, not on the first request
        self._thread = threading.Thread(target=self._drain, name="guardproxy-audit", daemon=True)
        self._thread.start()

    def submit(self, job: Job) -> bool:
        """Queue a record; False (and counted) if the queue is full."""
        try:
            self._queue.put_nowait(job)
        except queue.Full:
            self.dropped += 1
            if self._on_drop is not None:
                self._on_drop()
            return False
        return True

    def close(self, timeout: float = 5.0) -> None:
        """Write what is queued (for up to ``timeout`` seconds), then stop."""
        try:
            self._queue.put(_STOP, timeout=timeout)
        except queue.Full:
            log.error("audit queue still full at shutdown; %d queued records are lost", self._queue.qsize())
        self._thread.join(timeout)
        if self._stream is not None and self._stream is not sys.stdout:
            self._stream.close()
        if self._also is not None:
            self._also.close()

    def _open(self) -> None:
        if self.target == "-":
            self._stream = sys.stdout
            return
        path = Path(self.target)
        self._stream = path.open("a", encoding="utf-8")
        self._size = path.stat().st_size

    def _rotate(self) -> None:
        assert self._stream is not None
        self._stream.close()
        path = Path(self.target)
        for index in range(self._keep - 1, 0, -1):
            older = path.with_name(f"{path.name}.{index}")
            if older.exists():
                os.replace(older, path.with_name(f"{path.name}.{index + 1}"))
        os.replace(path, path.with_name(f"{path.name}.1"))
        self._open()

    def _drain(self) -> None:
        while True:
            job = self._queue.get()
            if job is _STOP:
                break
            try:
                line = job()  # type: ignore[operator]  # only Jobs and _STOP are queued
                if line is not None:
                    self._write(line)
            except Exception as exc:  # one bad record must not stop the trail; said, with no content
                log.error("audit record not written: %s", type(exc).__name__)
                if self._on_drop is not None:
                    self._on_drop()
            if self._queue.empty() and self._stream is not None:
                self._stream.flush()

    def _write(self, line: str) -> None:
        assert self._stream is not None
        data = line + "\n"
        size = len(data.encode("utf-8"))
        if self.target != "-" and self._size and self._size + size > self._max_bytes:
            self._rotate()
        self._stream.write(data)
        self._size += size
        self.written += 1
        if self._on_write is not None:
            self._on_write()
        if self._also is not None:
            self._also.emit(line)
