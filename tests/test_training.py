"""training/: the scripts that make the shipped weights live outside the package, and so do their dependencies."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "guardproxy"
SCRIPTS = ["toxicity_head.py", "profanity_export.py", "grounding_fit.py", "grounding_nli_fit.py", "injection_head.py",
           "secrets_rules.py"]
TRAINING_ONLY = ("sklearn", "profanity_check")


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return names


def test_no_module_of_the_package_imports_a_training_dependency() -> None:
    offenders = {str(path.relative_to(REPO)): sorted(m for m in imported_modules(path)
                                                     if m.split(".")[0] in TRAINING_ONLY)
                 for path in PACKAGE.rglob("*.py")}
    assert {path: modules for path, modules in offenders.items() if modules} == {}


def test_running_the_toxicity_guard_loads_no_training_dependency() -> None:
    # A fresh interpreter: this test process may have imported scikit-learn elsewhere.
    code = ("import sys\n"
            "from guardproxy.guards import GuardContext, Segment\n"
            "from guardproxy.guards.toxicity.config import ToxicityConfig\n"
            "from guardproxy.guards.toxicity.guard import ToxicityGuard\n"
            "guard = ToxicityGuard(ToxicityConfig())\n"
            "guard.warm()\n"
            "found = guard.scan([Segment('Have a lovely day. You are a stupid idiot.')], GuardContext('output'))\n"
            "assert found, 'the toxic sentence was not found'\n"
            f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({TRAINING_ONLY!r})))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert result.stdout.strip() == "[]"


def test_the_scripts_left_the_package() -> None:
    assert [p for p in ("guards/toxicity/training.py", "guards/toxicity/profanity_export.py", "guards/grounding/fit.py")
            if (PACKAGE / p).exists()] == []


@pytest.mark.parametrize("script", SCRIPTS)
def test_each_script_runs_as_a_script(script: str) -> None:
    result = subprocess.run([sys.executable, f"training/{script}", "--help"], capture_output=True, text=True,
                            check=True, cwd=REPO)
    assert result.stdout.startswith("usage:")
