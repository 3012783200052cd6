"""The CLI: check, test, and the error containment of the app."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.testclient import TestClient

from guardproxy.cli import run
from guardproxy.http.errors import ContainErrors

REPO = Path(__file__).resolve().parent.parent


def test_check_accepts_shipped_policies(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["check", str(REPO / "policies")]) == 0
    assert "OK: policy default@" in capsys.readouterr().out


def test_check_rejects_with_precise_message(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nname: x\nchains:\n  default:\n    input:\n"
                   "      - {guard: keywords, action: ban, terms: [a]}\n")
    assert run(["check", str(bad)]) == 1
    assert f"{bad}:6: chains.default.input.0.action: Input should be 'block', 'redact', 'flag' or 'annotate'" in \
        capsys.readouterr().err


def test_shipped_policy_tests_pass_as_a_subprocess() -> None:
    result = subprocess.run([sys.executable, "-m", "guardproxy", "test", str(REPO / "policies" / "tests")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "tests passed" in result.stdout and "FAIL" not in result.stdout


def test_policy_test_failure_exits_1_and_says_why(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "p.yaml").write_text("version: 1\nname: p\nchains:\n  default:\n    input:\n"
                                     "      - {guard: keywords, action: redact, terms: [bob], label: NAME}\n")
    tests = tmp_path / "tests"
    tests.mkdir()
    (tests / "t.yaml").write_text(
        "policy: ../p.yaml\ntests:\n"
        "  - {name: good, text: hi bob, expect: {verdict: redacted, labels: [NAME], text: 'hi [NAME]'}}\n"
        "  - {name: wrong, text: hi bob, expect: {verdict: pass}}\n"
        "  - {name: wrong text, text: hi bob, expect: {verdict: redacted, text: 'hi bob'}}\n")
    assert run(["test", str(tests)]) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out and "wrong: verdict: expected pass, got redacted" in out
    assert "wrong text: text: expected 'hi bob', got 'hi [NAME]'" in out
    assert "1/3 tests passed" in out


def test_policy_test_file_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "t.yaml").write_text("policy: missing.yaml\ntests:\n  - {name: a, text: x, expect: {verdict: pass}}\n")
    assert run(["test", str(tmp_path / "t.yaml")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_unexpected_errors_become_openai_500_without_the_message(caplog: pytest.LogCaptureFixture) -> None:
    async def explode(request: Request) -> Response:
        raise ValueError("jane.doe@example.com broke it")

    app = Starlette(routes=[Route("/x", explode)], middleware=[Middleware(ContainErrors)])
    caplog.set_level(logging.ERROR)
    with TestClient(app) as client:
        response = client.get("/x")
    assert response.status_code == 500
    assert response.json()["error"]["type"] == "server_error"
    assert "jane.doe" not in response.text and "jane.doe" not in caplog.text
    assert "ValueError at test_cli.py" in caplog.text


def test_serve_refuses_a_tracing_setting_every_worker_would_fail_on(tmp_path: Path) -> None:
    environ = {"PATH": "", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9",
               "OTEL_EXPORTER_OTLP_PROTOCOL": "carrier"}
    result = subprocess.run([sys.executable, "-m", "guardproxy", "serve", "--policy", str(REPO / "policies"),
                             "--port", "0", "--workers", "2"], capture_output=True, text=True, timeout=60,
                            env=environ)
    assert result.returncode == 2
    assert "OTEL_EXPORTER_OTLP_PROTOCOL=carrier is not supported" in result.stderr
    assert "Traceback" not in result.stderr
