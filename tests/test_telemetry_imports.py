"""Telemetry's boundaries: it reads the report and the policy types, never the proxy,
the HTTP layer or the engine's insides, and its own modules import in one direction."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import guardproxy.telemetry

PACKAGE = Path(guardproxy.telemetry.__file__).parent
ALLOWED_OUTSIDE = ("guardproxy.engine.verdict", "guardproxy.policy")


def guardproxy_imports(module: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(module.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return {name for name in names if name.startswith("guardproxy")}


def test_only_the_report_and_policy_types_come_from_outside() -> None:
    for module in PACKAGE.glob("*.py"):
        for name in guardproxy_imports(module):
            if not name.startswith("guardproxy.telemetry"):
                assert name.startswith(ALLOWED_OUTSIDE), f"{module.name} imports {name}"


def test_no_cycle_inside_telemetry() -> None:
    def inside(name: str) -> set[str]:
        return {i.removeprefix("guardproxy.telemetry.") for i in guardproxy_imports(PACKAGE / f"{name}.py")
                if i.startswith("guardproxy.telemetry.")}

    assert inside("report") == set()
    assert inside("tracing") == {"report"}
    assert "exposition" not in inside("facade")


def test_importing_telemetry_loads_no_proxy_or_http_module() -> None:
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, guardproxy.telemetry; "
         "print(' '.join(m for m in sys.modules if m.startswith(('guardproxy.proxy', 'guardproxy.http'))))"],
        capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == ""
