"""The servers a suite run starts, each in its own process and, when pinned, on its own CPU.

A ``Lab`` owns every process it starts: it waits for each to answer its
readiness URL (or to die, or to time out), keeps the exact command line for the
report, reads the resident memory of the processes that hold the app, and stops
them all in ``close()``, whatever happened in between. Commands run from the
repository root with relative paths, so they read as a person would type them.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from processes import free_port

REPO = Path(__file__).resolve().parent.parent
PYTHON = ".venv/bin/python"
GUARDPROXY = ".venv/bin/guardproxy"
LOAD_CPU = "0"  # the upstream, wrk and the Python clients
PROXY_CPU = "1"  # the server under test


@dataclass
class Server:
    """One started server: its command, base URL and process, and what loaded it."""

    key: str
    command: list[str]
    url: str
    process: subprocess.Popen[bytes]
    workers: int = 1
    rss_idle_mib: dict[int, float] = field(default_factory=dict)
    loaded_by: list[str] = field(default_factory=list)

    @property
    def shown_command(self) -> str:
        return shlex.join(self.command)

    def app_pids(self) -> list[int]:
        """The processes that run the app. With one worker, ``guardproxy serve`` (like uvicorn
        and LiteLLM) runs it in the process it was started as; with more, in spawned children."""
        if self.workers == 1:
            return [self.process.pid]
        return [pid for pid in descendants(self.process.pid) if "spawn_main" in _cmdline(pid)]

    def rss_mib(self) -> dict[int, float]:
        return {pid: rss_mib(pid) for pid in self.app_pids()}

    def settle(self, limit: float = 60) -> float:
        """Wait until the app's processes are idle (under 5 % of a CPU over half a second) and return the
        seconds waited, at most ``limit``. A guard that timed out goes on computing in its thread, and
        that work must not be charged to the next measurement; how long it went on is reported."""
        started = time.monotonic()
        used = cpu_seconds(self.app_pids())
        while time.monotonic() - started < limit:
            time.sleep(0.5)
            now = cpu_seconds(self.app_pids())
            if now - used < 0.025:
                break
            used = now
        return time.monotonic() - started


def rss_mib(pid: int) -> float:
    """VmRSS of one process, in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"process {pid} has no VmRSS")


def cpu_seconds(pids: list[int]) -> float:
    """User and system CPU time of the processes, all their threads included."""
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def descendants(pid: int) -> list[int]:
    found: list[int] = []
    for children in Path(f"/proc/{pid}/task").glob("*/children"):
        for child in children.read_text().split():
            found += [int(child), *descendants(int(child))]
    return found


def pinned(cpu: str | None, command: list[str]) -> list[str]:
    return ["taskset", "-c", cpu, *command] if cpu is not None else command


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return 200 <= response.status < 300
    except OSError:  # refused, reset, timed out, or an HTTP error status: not ready yet
        return False


class Lab:
    """Starts servers, hands them out by key, and stops every one of them on ``close()``."""

    def __init__(self, pin: bool = True) -> None:
        self.pin = pin
        self.servers: dict[str, Server] = {}
        self.started: list[Server] = []
        self._tmp = tempfile.TemporaryDirectory(prefix="guardproxy-bench-")
        self.tmp = Path(self._tmp.name)

    def cpu(self, role: str) -> str | None:
        return (PROXY_CPU if role == "proxy" else LOAD_CPU) if self.pin else None

    def launch(self, key: str, command: list[str], ready_path: str, port: int, *, env: dict[str, str] | None = None,
               workers: int = 1, timeout: float = 120) -> Server:
        clean = {k: v for k, v in os.environ.items()
                 if not k.startswith(("GUARDPROXY_", "PROMETHEUS_MULTIPROC", "OTEL_", "LITELLM_"))}
        process = subprocess.Popen(command, cwd=REPO, env={**clean, **(env or {})}, stdin=subprocess.DEVNULL,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        server = Server(key, command, f"http://127.0.0.1:{port}", process, workers)
        self.servers[key] = server
        self.started.append(server)
        deadline = time.monotonic() + timeout
        while not _answers(server.url + ready_path):
            if process.poll() is not None:
                self.stop(key)
                raise RuntimeError(f"{key} exited with code {process.returncode}; run it by hand to see why:\n"
                                   f"  {server.shown_command}")
            if time.monotonic() > deadline:
                self.stop(key)
                raise RuntimeError(f"{key} was not ready after {timeout:.0f} s: {server.shown_command}")
            time.sleep(0.1)
        if workers > 1:
            self._await_workers(server, deadline)
        server.rss_idle_mib = server.rss_mib()
        return server

    def _await_workers(self, server: Server, deadline: float) -> None:
        """Every worker must answer before the idle memory is read: poll /readyz until
        all of the spawned children exist and have been ready for a moment."""
        while len(server.app_pids()) < server.workers and time.monotonic() < deadline:
            time.sleep(0.2)
        for _ in range(4 * server.workers):
            _answers(server.url + "/readyz")
        time.sleep(1.0)

    def upstream(self, key: str = "upstream", chunk_delay_ms: int = 0, paced_events: int = 0) -> Server:
        """benchmarks/fast_upstream.py, on the load generator's CPU."""
        if key not in self.servers:
            port = free_port()
            command = [PYTHON, "benchmarks/fast_upstream.py", "--port", str(port)]
            if chunk_delay_ms:
                command += ["--chunk-delay-ms", str(chunk_delay_ms), "--paced-events", str(paced_events)]
            self.launch(key, pinned(self.cpu("load"), command), "/v1/models", port, timeout=30)
        return self.servers[key]

    def reference(self, client: str, upstream: Server, key: str | None = None) -> Server:
        """benchmarks/reference_proxy.py, the pass-through that sets the physical limit."""
        key = key or f"reference-{client}"
        if key not in self.servers:
            port = free_port()
            command = [PYTHON, "benchmarks/reference_proxy.py", "--port", str(port), "--upstream", upstream.url,
                       "--client", client]
            self.launch(key, pinned(self.cpu("proxy"), command), "/v1/models", port, timeout=30)
        return self.servers[key]

    def guardproxy(self, key: str, policy: Path | str, upstream: Server, workers: int = 1) -> Server:
        """``guardproxy serve`` with its defaults (log level info, metrics on), access log to /dev/null."""
        if key not in self.servers:
            check = subprocess.run([GUARDPROXY, "check", str(policy)], cwd=REPO, capture_output=True, text=True,
                                   timeout=120)
            if check.returncode:
                raise RuntimeError(f"{policy} is not a valid policy:\n{check.stderr}")
            port = free_port()
            shown = Path(policy).relative_to(REPO) if Path(policy).is_relative_to(REPO) else policy
            command = [GUARDPROXY, "serve", "--upstream", upstream.url + "/v1", "--policy", str(shown), "--port",
                       str(port)]
            if workers > 1:
                command += ["--workers", str(workers)]
            self.launch(key, pinned(self.cpu("proxy"), command), "/readyz", port, workers=workers)
        return self.servers[key]

    def stop(self, key: str) -> None:
        server = self.servers.pop(key, None)
        if server is None:
            return
        if server.process.poll() is None:
            server.process.terminate()
            try:
                server.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(server.process.pid, signal.SIGKILL)
                server.process.wait(timeout=10)

    def close(self) -> None:
        for key in list(self.servers):
            self.stop(key)
        self._tmp.cleanup()

    def commands(self) -> list[str]:
        """Every server command of the run, in the order they were started."""
        return [server.shown_command for server in self.started]
