"""The admin key (/v1/guardrails/check, /metrics), the metrics port, the keys file's
validation and constant-time look-up, ``guardproxy keys``, and trusted_headers."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from guardproxy import keys as keys_module
from guardproxy.cli import run
from guardproxy.keys import key_digest, load_keys
from guardproxy.policy import PolicyError, load_policy_set
from tests.conftest import BASIC_POLICY, REPO, RunningProxy
from tests.servers import free_port

ADMIN = "gp-admin-5f1e2d3c4b5a69788796"
CLIENT = "gp-client-0a1b2c3d4e5f"
CHECK = {"text": "hello there", "stage": "input"}


def write_keys(tmp_path: Path, *entries: dict[str, Any]) -> Path:
    path = tmp_path / "keys.yaml"
    path.write_text(json.dumps({"keys": list(entries)}))
    return path


@pytest.fixture
def admin_proxy(start_proxy: Callable[..., RunningProxy], tmp_path: Path) -> RunningProxy:
    keys = write_keys(tmp_path, {"name": "app", "sha256": key_digest(CLIENT), "chain": "default"})
    return start_proxy(BASIC_POLICY, environ={"GP_ADMIN": ADMIN}, keys_file=str(keys), admin_key_env="GP_ADMIN")


def bearer(key: str | None) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"} if key else {}


def test_the_check_endpoint_takes_the_admin_key_only(admin_proxy: RunningProxy) -> None:
    url = admin_proxy.server.url + "/v1/guardrails/check"
    assert httpx.post(url, json=CHECK).status_code == 401
    assert httpx.post(url, json=CHECK, headers=bearer("gp-guess")).status_code == 401
    refused = httpx.post(url, json=CHECK, headers=bearer(CLIENT))
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "admin_key_required"
    allowed = httpx.post(url, json=CHECK, headers=bearer(ADMIN))
    assert allowed.status_code == 200 and allowed.json()["verdict"] == "pass"


def test_the_admin_key_is_not_a_client_key(admin_proxy: RunningProxy) -> None:
    with pytest.raises(openai.AuthenticationError):
        admin_proxy.client(api_key=ADMIN).chat.completions.create(
            model="demo", messages=[{"role": "user", "content": "hi"}])


def test_metrics_on_the_public_port_take_the_admin_key(admin_proxy: RunningProxy) -> None:
    url = admin_proxy.server.url + "/metrics"
    assert httpx.get(url).status_code == 401
    assert httpx.get(url, headers=bearer(CLIENT)).status_code == 403
    scraped = httpx.get(url, headers=bearer(ADMIN))
    assert scraped.status_code == 200 and "guardproxy_requests_total" in scraped.text


def test_without_keys_the_check_endpoint_stays_open(start_proxy: Callable[..., RunningProxy]) -> None:
    proxy = start_proxy(BASIC_POLICY)
    assert httpx.post(proxy.server.url + "/v1/guardrails/check", json=CHECK).status_code == 200
    assert httpx.get(proxy.server.url + "/metrics").status_code == 200


def test_the_metrics_port_serves_metrics_and_the_public_port_does_not(
        start_proxy: Callable[..., RunningProxy]) -> None:
    port = free_port()
    proxy = start_proxy(BASIC_POLICY, metrics_port=port)
    proxy.client().chat.completions.create(model="demo", messages=[{"role": "user", "content": "hi"}])
    assert httpx.get(proxy.server.url + "/metrics").status_code == 404
    scraped = httpx.get(f"http://127.0.0.1:{port}/metrics")
    assert scraped.status_code == 200
    assert 'guardproxy_requests_total{model="demo",route="chat",status_code="200",verdict="pass"} 1.0' \
        in scraped.text


def test_serve_refuses_the_same_port_for_metrics(tmp_path: Path) -> None:
    port = str(free_port())
    done = subprocess.run([sys.executable, "-m", "guardproxy", "serve", "--policy", str(REPO / "policies"),
                           "--port", port, "--metrics-port", port], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "--metrics-port must differ from --port" in done.stderr


def test_keys_hash_prints_the_sha256_of_stdin(monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("sk-test\n"))
    assert run(["keys", "hash"]) == 0
    assert capsys.readouterr().out.strip() == "f3abf2a6cc4f00987743db5f544ba345b4899ae31f326d8ee9c4816de153c9e0"
    monkeypatch.setattr(sys, "stdin", io.StringIO("\n"))
    assert run(["keys", "hash"]) == 2


def test_keys_check_names_each_problem(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    policy = tmp_path / "p.yaml"
    policy.write_text(BASIC_POLICY)
    good = write_keys(tmp_path, {"name": "app", "sha256": key_digest("a"), "chain": "default", "models": ["gpt-*"]})
    assert run(["keys", "check", str(good), "--policy", str(policy)]) == 0
    assert "1 keys; app -> default/default" in capsys.readouterr().out
    bad = tmp_path / "bad.yaml"
    bad.write_text(json.dumps({"keys": [
        {"name": "a", "sha256": "abc", "chain": "default"},
        {"name": "b", "sha256": key_digest("b"), "chain": "default", "key": "plain"},
    ]}))
    assert run(["keys", "check", str(bad), "--policy", str(policy)]) == 1
    err = capsys.readouterr().err
    assert "keys.0.sha256: must be the 64 hex digits" in err
    assert "keys.1.key: unknown key" in err


@pytest.mark.parametrize(("entries", "problem"), [
    ([{"name": "a", "sha256": key_digest("x"), "chain": "default"},
      {"name": "a", "sha256": key_digest("y"), "chain": "default"}], "each key's name must be unique: a"),
    ([{"name": "a", "sha256": key_digest("x"), "chain": "default"},
      {"name": "b", "sha256": key_digest("x").upper(), "chain": "default"}], "each key's sha256 must be unique"),
    ([{"name": "a", "sha256": key_digest("x"), "chain": "nope"}], "no chain 'nope'"),
    ([{"name": "a", "sha256": key_digest("x"), "chain": "default", "policy": "other"}],
     "no policy named 'other'"),
])
def test_invalid_keys_files_are_refused(tmp_path: Path, entries: list[dict[str, Any]], problem: str) -> None:
    policy = tmp_path / "p.yaml"
    policy.write_text(BASIC_POLICY)
    with pytest.raises(PolicyError) as caught:
        load_keys(str(write_keys(tmp_path, *entries)), load_policy_set(policy))
    assert any(problem in line for line in caught.value.problems), caught.value.problems


def test_a_repeated_yaml_key_in_the_keys_file_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "keys.yaml"
    path.write_text(f"keys:\n  - name: a\n    sha256: {key_digest('x')}\n    chain: default\n    chain: strict\n")
    with pytest.raises(PolicyError, match="duplicate key 'chain'"):
        load_keys(str(path))


def test_every_digest_is_compared_whichever_matches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    entries = [{"name": f"k{i}", "sha256": key_digest(f"key-{i}"), "chain": "default"} for i in range(5)]
    keys = load_keys(str(write_keys(tmp_path, *entries)))
    compared: list[bytes] = []
    real = keys_module.hmac.compare_digest

    def counting(a: bytes, b: bytes) -> bool:
        compared.append(b)
        return real(a, b)

    monkeypatch.setattr(keys_module.hmac, "compare_digest", counting)
    for presented, expected in (("key-0", "k0"), ("key-4", "k4"), ("nobody", None)):
        compared.clear()
        found = keys.find(presented)
        assert (found.name if found else None) == expected
        assert len(compared) == 5  # no early exit: the time does not depend on where (or whether) it matched


def test_a_route_on_an_untrusted_header_is_refused(tmp_path: Path) -> None:
    policy = tmp_path / "p.yaml"
    policy.write_text("version: 1\nname: p\nchains: {default: {}, lax: {}}\n"
                      "routes:\n  - {match: {header: {x-tenant: acme}}, chain: lax}\n")
    with pytest.raises(PolicyError) as caught:
        load_policy_set(policy)
    assert "routes.0.match.header: 'x-tenant' is not in trusted_headers" in "\n".join(caught.value.problems)
    policy.write_text(policy.read_text() + "trusted_headers: [X-Tenant]\n")
    assert load_policy_set(policy).select(None, {"x-tenant": "acme"}, "/v1/chat/completions").chain_name == "lax"
