"""What the figures were measured on: CPU, cores, memory, kernel, Python, the stack's versions."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
from typing import Any

import litellm_incumbent

PACKAGES = ("uvicorn", "starlette", "aiohttp", "httpx", "httpx-aiohttp", "uvloop", "httptools", "guardproxy")


def _cpu_model() -> str:
    try:
        output = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
    except OSError:
        return platform.processor() or "unknown"
    return next((line.split(":", 1)[1].strip() for line in output.splitlines() if line.startswith("Model name")),
                "unknown")


def _memory_gib() -> float:
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024 / 1024
    return float("nan")


def _wrk_version() -> str:
    try:
        finished = subprocess.run(["wrk", "-v"], capture_output=True, text=True, timeout=10)
    except OSError:
        return "not installed"
    return (finished.stdout + finished.stderr).split("Copyright")[0].strip()


def load_average() -> list[float]:
    return [float(x) for x in open("/proc/loadavg").read().split()[:3]]


def describe() -> dict[str, Any]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    versions["litellm"] = litellm_incumbent.installed_version() or "not installed"
    versions["wrk"] = _wrk_version()
    return {"cpu": _cpu_model(), "cores": os.cpu_count(), "memory_gib": round(_memory_gib(), 1),
            "kernel": platform.release(), "python": platform.python_version(), "versions": versions}
