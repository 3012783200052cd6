"""The dependency direction holds: the commands that only evaluate policies load no HTTP
stack, and the engine and guards know no HTTP."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "guardproxy"
HTTP_STACK = ("starlette", "uvicorn", "aiohttp", "httpx", "guardproxy.http", "guardproxy.proxy")


@pytest.mark.parametrize("module", ["guardproxy.policytest", "guardproxy.evaluation", "guardproxy.engine.check"])
def test_policy_commands_load_no_http_stack(module: str) -> None:
    code = (f"import sys, {module}; print(sorted(m for m in sys.modules if m.split('.')[0] in "
            f"{HTTP_STACK[:4]!r} or m.startswith({HTTP_STACK[4:]!r})))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]", loaded


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


@pytest.mark.parametrize(("layer", "forbidden"), [
    ("engine", ("guardproxy.http", "guardproxy.proxy", "guardproxy.telemetry", "starlette", "aiohttp")),
    ("guards", ("guardproxy.http", "guardproxy.proxy", "guardproxy.engine", "guardproxy.telemetry", "starlette")),
    ("policy", ("guardproxy.http", "guardproxy.proxy", "guardproxy.telemetry", "starlette")),
    ("telemetry", ("guardproxy.http", "guardproxy.proxy", "guardproxy.engine.core")),
    ("proxy", ("guardproxy.http",)),
    ("audit", ("guardproxy.http", "guardproxy.proxy", "starlette", "aiohttp")),
])
def test_no_module_imports_upward(layer: str, forbidden: tuple[str, ...]) -> None:
    offenders = {f"{path.relative_to(PACKAGE)}: {name}" for path in (PACKAGE / layer).rglob("*.py")
                 for name in _imports(path) if name.startswith(forbidden)}
    assert not offenders
