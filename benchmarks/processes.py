"""Servers under benchmark, each in its own process.

The demo upstream and the proxy run as separate processes, as in production,
so their event loops and the GIL are not shared with the load generator and a
figure measures the server rather than the client. Shared by the benchmark
scripts, which import it as a sibling module (they are run as files, not as a
package).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request


def free_port() -> int:
    """A port the OS just handed out, so parallel runs do not collide."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(url: str, timeout: float = 30) -> None:
    """Poll until ``url`` answers 2xx; the proxy's /readyz only does once its guards are warm."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not become ready")


def start(args: list[str], ready_url: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """Run ``python <args>`` quietly and return once ``ready_url`` answers."""
    process = subprocess.Popen([sys.executable, *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               env={**os.environ, "GUARDPROXY_LOG_LEVEL": "warning", **(env or {})})
    try:
        wait_ready(ready_url)
    except RuntimeError:
        process.terminate()
        raise
    return process


def stop_all(processes: list[subprocess.Popen[bytes]]) -> None:
    """Terminate the servers a benchmark started and wait for them to exit."""
    for process in processes:
        process.terminate()
        process.wait(timeout=15)
