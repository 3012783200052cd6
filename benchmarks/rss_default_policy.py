"""Resident memory of one worker running policies/default.yaml: once ready, and after 45 chats of
200, 2,000 and 8,000 characters; for this tree and, with BASE=<path of an older checkout>, that one
too, side by side. Run from the repository root:

    BASE=/tmp/base .venv/bin/python benchmarks/rss_default_policy.py
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
from processes import free_port
from prose import Prose

HERE = Path(__file__).resolve().parent.parent
PYTHON = str(HERE / ".venv" / "bin" / "python")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def measure(tree: Path, upstream: str, prose: Prose) -> tuple[float, float]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GUARDPROXY")}
    if tree != HERE:
        env["PYTHONPATH"] = str(tree)
    process = subprocess.Popen([PYTHON, "-m", "guardproxy", "serve", "--upstream", upstream, "--policy",
                                "policies/default.yaml", "--port", str(port)], cwd=tree, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(240):
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        idle = rss_mib(process.pid)
        for chars in (200, 2000, 8000):
            for _ in range(15):
                httpx.post(f"http://127.0.0.1:{port}/v1/chat/completions", timeout=60, json={
                    "model": "demo", "messages": [{"role": "user", "content": prose.text(chars)}]})
        return idle, rss_mib(process.pid)
    finally:
        process.terminate()
        process.wait()


def main() -> None:
    trees = [HERE] + ([Path(os.environ["BASE"])] if os.environ.get("BASE") else [])
    port = free_port()
    upstream = subprocess.Popen([PYTHON, "-m", "guardproxy.demo", "--port", str(port)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(3)
        for tree in trees:
            idle, loaded = measure(tree, f"http://127.0.0.1:{port}/v1", Prose(7))
            print(f"{tree}: idle {idle:.0f} MiB, after load {loaded:.0f} MiB", flush=True)
    finally:
        upstream.terminate()
    sys.exit(0)


if __name__ == "__main__":
    main()
