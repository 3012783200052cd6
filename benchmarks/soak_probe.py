"""What the soak reads of the proxy process: memory, open fds, threads, CPU, and its log.

Everything comes from /proc (no psutil): VmRSS, the entries of /proc/PID/fd (sockets
sorted into the proxy's listener, connections from clients and connections to the
upstream, through /proc/net/tcp), the thread count, user and system CPU time. The
proxy's stderr (its JSON access lines and its own log lines) goes to a file, which
is summarised per phase: statuses and failed guards as the proxy saw them, and every
warning or error, grouped by message.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from servers import REPO, Lab, Server, cpu_seconds, rss_mib

_LOG_LINE = re.compile(r"^\S+ \S+ (?P<level>[A-Z]+) (?P<logger>[\w.]+): (?P<message>.*)$")
_NUMBERS = re.compile(r"\d+")


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(200 <= response.status < 300)
    except OSError:  # refused, reset, timed out, or an HTTP error status: not ready yet
        return False


def launch_logged(lab: Lab, key: str, command: list[str], port: int, log_path: Path, timeout: float = 120) -> Server:
    """``Lab.launch`` with the server's stderr kept in ``log_path`` (``Lab.launch`` discards it); the lab
    still stops it."""
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("GUARDPROXY_", "PROMETHEUS_MULTIPROC", "OTEL_", "LITELLM_"))}
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, cwd=REPO, env=clean, stdin=subprocess.DEVNULL,
                                   stdout=subprocess.DEVNULL, stderr=log, start_new_session=True)
    server = Server(key, command, f"http://127.0.0.1:{port}", process)
    lab.servers[key] = server
    lab.started.append(server)
    deadline = time.monotonic() + timeout
    while not _ready(server.url + "/readyz"):
        if process.poll() is not None or time.monotonic() > deadline:
            lab.stop(key)
            raise RuntimeError(f"{key} did not start; its log: {log_path.read_text()[-2000:]}")
        time.sleep(0.1)
    return server


def _socket_roles(inodes: set[str], own_port: int, upstream_port: int) -> dict[str, int]:
    roles: dict[str, int] = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[9] not in inodes:
                continue
            local, remote, state = int(fields[1].rsplit(":", 1)[1], 16), int(fields[2].rsplit(":", 1)[1], 16), fields[3]
            if state == "0A":
                role = "listening"
            elif local == own_port:
                role = "from_clients"
            elif remote == upstream_port:
                role = "to_upstream"
            else:
                role = "other_tcp"
            name = role if state in ("01", "0A") else f"{role}_state_{state}"  # 01 established, 0A listen
            roles[name] = roles.get(name, 0) + 1
    return roles


@dataclass
class Reading:
    rss_mib: float
    fds: int
    threads: int
    cpu_s: float
    fd_kinds: dict[str, int] = field(default_factory=dict)
    sockets: dict[str, int] = field(default_factory=dict)

    def brief(self) -> dict[str, Any]:
        return {"rss_mib": round(self.rss_mib, 1), "fds": self.fds, "threads": self.threads,
                "cpu_s": round(self.cpu_s, 2)}

    def full(self) -> dict[str, Any]:
        return {**self.brief(), "fd_kinds": self.fd_kinds, "sockets": self.sockets}


class Probe:
    """Reads one running proxy; ``upstream_port`` tells its upstream connections from the others."""

    def __init__(self, server: Server, log_path: Path, upstream_url: str) -> None:
        self.pid = server.process.pid
        self.port = int(urlsplit(server.url).port or 0)
        self.upstream_port = int(urlsplit(upstream_url).port or 0)
        self.log_path = log_path

    def reading(self) -> Reading:
        proc = Path(f"/proc/{self.pid}")
        kinds: dict[str, int] = {}
        inodes: set[str] = set()
        for entry in (proc / "fd").iterdir():
            try:
                target = os.readlink(entry)
            except OSError:  # closed between the listing and the read
                continue
            kind = target.split(":", 1)[0] if ":" in target else ("file" if target.startswith("/") else target)
            if target.startswith("anon_inode:"):
                kind = target
            kinds[kind] = kinds.get(kind, 0) + 1
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
        status = (proc / "status").read_text()
        threads = int(next(line.split()[1] for line in status.splitlines() if line.startswith("Threads:")))
        return Reading(rss_mib(self.pid), sum(kinds.values()), threads, cpu_seconds([self.pid]),
                       dict(sorted(kinds.items())), _socket_roles(inodes, self.port, self.upstream_port))

    def log_offset(self) -> int:
        return self.log_path.stat().st_size

    def log_summary(self, start: int) -> dict[str, Any]:
        """The proxy's own account of the log since byte ``start``: access statuses, verdicts, failed
        guards, upstream errors, and warnings and errors grouped by message (numbers blanked)."""
        with self.log_path.open("rb") as log:
            log.seek(start)
            text = log.read().decode(errors="replace")
        statuses: dict[str, int] = {}
        verdicts: dict[str, int] = {}
        failures: dict[str, int] = {}
        upstream: dict[str, int] = {}
        problems: dict[str, int] = {}
        for line in text.splitlines():
            if line.startswith("{"):
                try:
                    access = json.loads(line)
                except ValueError:
                    access = None
                if isinstance(access, dict) and "status" in access:
                    _count(statuses, str(access["status"]))
                    _count(verdicts, str(access.get("verdict")))
                    for failed in access.get("failed") or ():
                        _count(failures, str(failed))
                    if access.get("upstream_error"):
                        _count(upstream, str(access["upstream_error"]))
                    continue
            match = _LOG_LINE.match(line)
            if match is None:
                _count(problems, "unparsed: " + _NUMBERS.sub("N", line)[:160])
            elif match["level"] not in ("INFO", "DEBUG"):
                _count(problems, f"{match['level']} {match['logger']}: {_NUMBERS.sub('N', match['message'])[:160]}")
        return {"access_statuses": dict(sorted(statuses.items())), "verdicts": dict(sorted(verdicts.items())),
                "access_5xx": sum(n for s, n in statuses.items() if s.startswith("5")),
                "guard_failures": failures, "upstream_errors": upstream, "problems": problems}


def _count(counts: dict[str, int], key: str) -> None:
    counts[key] = counts.get(key, 0) + 1
