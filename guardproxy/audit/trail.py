"""Reading an audit trail back: a file and, oldest first, the files rotated out of it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from guardproxy.audit.record import AuditRecord, RecordError, parse_record


def trail_files(path: Path) -> list[Path]:
    """``path`` and its rotated predecessors (``path.1`` is the newest of those), oldest first.
    A path that names a single rotated file is read alone."""
    rotated = re.compile(re.escape(path.name) + r"\.(\d+)$")
    older = sorted(((int(m.group(1)), p) for p in path.parent.glob(path.name + ".*")
                    if (m := rotated.match(p.name))), reverse=True)
    files = [p for _, p in older]
    if path.exists():
        files.append(path)
    return files


def read_trail(path: str | Path, *, rotated: bool = True) -> Iterator[AuditRecord]:
    """Every record of the trail, oldest first. A line that is not a record raises
    ``RecordError`` naming the file and line: a trail read in part would give wrong counts.
    A blank last line (a writer stopped mid-way) is skipped."""
    path = Path(path)
    files = trail_files(path) if rotated else [path]
    if not files:
        raise RecordError(f"{path}: no such audit trail")
    for file in files:
        with file.open(encoding="utf-8") as lines:
            for number, line in enumerate(lines, 1):
                if not line.strip():
                    continue
                yield parse_record(line, f"{file}:{number}")
