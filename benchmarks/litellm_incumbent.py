"""LiteLLM's proxy, the incumbent, run the way the issue compares against it.

It lives in its own virtualenv, ``benchmarks/.litellm-venv`` (gitignored),
installed on first use so its many pins never touch guardproxy's. The version
is pinned to 1.82.6, the last release before the March 2026 PyPI compromise of
1.82.7 and 1.82.8 (a credential stealer started from a ``.pth`` file); the
install is refused if a ``litellm_init.pth`` shows up anyway. No database, no
telemetry, the local model cost map (nothing fetched at start), one worker.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from chat_client import preflight
from servers import REPO, Lab, Server, free_port, pinned

VERSION = "1.82.6"
SPEC = f"litellm[proxy]=={VERSION}"
VENV = Path("benchmarks/.litellm-venv")
MASTER_KEY = "sk-bench-master"
HEADERS = {"authorization": f"Bearer {MASTER_KEY}"}
ENV = {"LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_MASTER_KEY": MASTER_KEY, "LITELLM_TELEMETRY": "False"}


def installed_version() -> str | None:
    python = REPO / VENV / "bin" / "python"
    if not python.exists():
        return None
    found = subprocess.run([str(python), "-c", "import importlib.metadata as m; print(m.version('litellm'))"],
                           capture_output=True, text=True, timeout=60)
    return found.stdout.strip() or None


def ensure_installed() -> str:
    """Install the pinned LiteLLM into its venv unless it is there; returns why not, or ``""`` when ready."""
    if installed_version() != VERSION:
        print(f"  installing {SPEC} into {VENV} (once; a few minutes)", flush=True)
        try:
            subprocess.run([sys.executable, "-m", "venv", str(VENV)], cwd=REPO, check=True, timeout=300)
            subprocess.run([str(VENV / "bin" / "pip"), "install", "-q", "--disable-pip-version-check", SPEC],
                           cwd=REPO, check=True, timeout=1200, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
            stderr = getattr(exc, "stderr", b"") or b""
            return f"could not install {SPEC}: {exc} {stderr.decode(errors='replace')[-400:]}"
    if installed_version() != VERSION:
        return f"{VENV} does not hold litellm {VERSION}"
    if any((REPO / VENV).glob("lib/python*/site-packages/litellm_init.pth")):
        return f"{VENV} holds litellm_init.pth, the mark of a compromised release: delete the venv"
    return ""


def start(lab: Lab, upstream: Server) -> Server:
    """``litellm --config`` with one model routed to ``upstream``, pinned like the proxy under test,
    and checked to answer a chat completion, plain and streamed, with 200."""
    config = lab.tmp / "litellm.yaml"
    config.write_text(json.dumps({"model_list": [{"model_name": "gpt-4o-mini", "litellm_params": {
        "model": "openai/gpt-4o-mini", "api_base": upstream.url + "/v1", "api_key": "sk-bench"}}]}))
    port = free_port()
    command = [str(VENV / "bin" / "litellm"), "--config", str(config), "--host", "127.0.0.1", "--port", str(port),
               "--num_workers", "1", "--telemetry", "False"]
    server = lab.launch("litellm", pinned(lab.cpu("proxy"), command), "/health/liveliness", port, env=ENV,
                        timeout=240)
    preflight(server.url + "/v1/chat/completions", HEADERS)
    return server
