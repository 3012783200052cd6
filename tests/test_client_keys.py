"""End to end: client keys bound to chains (--keys-file), through the openai, anthropic and
AzureOpenAI SDKs against the proxy under uvicorn, in front of the demo upstream."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest

from guardproxy.demo import DemoRecorder
from guardproxy.keys import key_digest
from tests.conftest import RunningProxy, wait_until

SUPPORT_KEY = "gp-support-0123456789abcdef"
OPS_KEY = "gp-ops-fedcba9876543210"
HELLO = [{"role": "user", "content": "hello"}]
AZURE_VERSION = "2024-10-21"

POLICY = """
version: 1
name: default
trusted_headers: [x-tenant]
chains:
  default: {}
  strict:
    input:
      - {name: banned, guard: keywords, action: block, terms: [zanzibar], label: banned}
routes:
  - {match: {header: {x-tenant: lax}}, chain: default}
  - {match: {model: "*"}, chain: strict}
"""


def keys_yaml(*entries: dict[str, Any]) -> str:
    return json.dumps({"keys": list(entries)})  # JSON is YAML


SUPPORT = {"name": "team-support", "sha256": key_digest(SUPPORT_KEY), "chain": "strict", "models": ["demo*"]}
OPS = {"name": "team-ops", "sha256": key_digest(OPS_KEY).upper(), "chain": "default"}


@pytest.fixture
def keyed(start_proxy: Callable[..., RunningProxy], tmp_path: Path) -> Callable[..., RunningProxy]:
    def start(*entries: dict[str, Any], **overrides: Any) -> RunningProxy:
        keys = tmp_path / "keys" / "keys.yaml"
        keys.parent.mkdir(exist_ok=True)
        keys.write_text(keys_yaml(*(entries or (SUPPORT, OPS))))
        return start_proxy(POLICY, keys_file=str(keys), **overrides)

    return start


def keys_path(proxy: RunningProxy) -> Path:
    return proxy.policy_path.parent.parent / "keys" / "keys.yaml"


def test_no_key_or_an_unknown_key_gets_401_and_nothing_goes_upstream(
        keyed: Callable[..., RunningProxy], recorder: DemoRecorder) -> None:
    proxy = keyed()
    recorder.clear()
    for key in ("", "gp-unknown", SUPPORT_KEY + "x"):
        response = httpx.post(proxy.server.url + "/v1/chat/completions", json={"model": "demo", "messages": HELLO},
                              headers={"authorization": f"Bearer {key}"} if key else {})
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "invalid_api_key"
        assert response.json()["error"]["type"] == "invalid_request_error"
    with pytest.raises(openai.AuthenticationError) as caught:
        proxy.client(api_key="gp-wrong").chat.completions.create(model="demo", messages=HELLO)
    assert caught.value.code == "invalid_api_key"
    assert recorder.requests == []


@pytest.fixture
def start_proxy_with_operator(start_proxy: Callable[..., RunningProxy]) -> Callable[..., RunningProxy]:
    def start(*args: Any, **kwargs: Any) -> RunningProxy:
        return start_proxy(*args, environ={"OPERATOR_KEY": "sk-operator"}, **kwargs)

    return start


@pytest.fixture
def keyed_operator(start_proxy_with_operator: Callable[..., RunningProxy],
                   tmp_path: Path) -> Callable[..., RunningProxy]:
    def start(**overrides: Any) -> RunningProxy:
        keys = tmp_path / "keys" / "keys.yaml"
        keys.parent.mkdir(exist_ok=True)
        keys.write_text(keys_yaml(SUPPORT, OPS))
        return start_proxy_with_operator(POLICY, keys_file=str(keys), **overrides)

    return start


def test_the_operator_key_replaces_the_client_key(keyed_operator: Callable[..., RunningProxy],
                                                  recorder: DemoRecorder) -> None:
    proxy = keyed_operator(upstream_key_env="OPERATOR_KEY")
    proxy.client(api_key=OPS_KEY).chat.completions.create(model="demo", messages=HELLO)
    sent = recorder.last().headers
    assert sent["authorization"] == "Bearer sk-operator"
    assert OPS_KEY not in json.dumps(sent)


def test_without_an_operator_key_the_client_key_is_still_not_forwarded(
        keyed: Callable[..., RunningProxy], recorder: DemoRecorder) -> None:
    proxy = keyed()
    proxy.client(api_key=OPS_KEY).chat.completions.create(model="demo", messages=HELLO)
    sent = recorder.last().headers
    assert "authorization" not in sent
    assert OPS_KEY not in json.dumps(sent)


def test_the_key_chain_wins_over_every_route(keyed: Callable[..., RunningProxy], recorder: DemoRecorder) -> None:
    proxy = keyed()
    banned = [{"role": "user", "content": "tell me about zanzibar"}]
    # team-ops is bound to the lax default chain, even though the model route says strict
    answer = proxy.client(api_key=OPS_KEY).chat.completions.create(model="demo", messages=banned)
    assert answer.choices[0].message.content
    # team-support is bound to strict, and the trusted header route to the lax chain does not free it
    recorder.clear()
    with pytest.raises(openai.BadRequestError) as caught:
        proxy.client(api_key=SUPPORT_KEY).chat.completions.create(model="demo", messages=banned,
                                                                  extra_headers={"x-tenant": "lax"})
    assert caught.value.code == "policy_violation"
    assert recorder.requests == []


def test_a_model_outside_the_key_globs_gets_403(keyed: Callable[..., RunningProxy], recorder: DemoRecorder) -> None:
    proxy = keyed()
    recorder.clear()
    with pytest.raises(openai.PermissionDeniedError) as caught:
        proxy.client(api_key=SUPPORT_KEY).chat.completions.create(model="gpt-4o", messages=HELLO)
    assert caught.value.code == "model_not_allowed"
    assert recorder.requests == []
    assert proxy.client(api_key=SUPPORT_KEY).chat.completions.create(model="demo-large", messages=HELLO).choices


def test_anthropic_takes_x_api_key_and_answers_in_its_own_shape(keyed: Callable[..., RunningProxy],
                                                                recorder: DemoRecorder) -> None:
    proxy = keyed()
    client = anthropic.Anthropic(base_url=proxy.server.url, api_key=OPS_KEY, max_retries=0, timeout=20)
    message = client.messages.create(model="demo", max_tokens=64, messages=[{"role": "user", "content": "hello"}])
    assert message.content
    assert "x-api-key" not in recorder.last().headers
    wrong = anthropic.Anthropic(base_url=proxy.server.url, api_key="sk-ant-wrong", max_retries=0, timeout=20)
    with pytest.raises(anthropic.AuthenticationError) as caught:
        wrong.messages.create(model="demo", max_tokens=64, messages=[{"role": "user", "content": "hello"}])
    assert caught.value.body["type"] == "error"  # type: ignore[index]
    assert caught.value.body["error"]["type"] == "authentication_error"  # type: ignore[index]


def test_azure_takes_api_key(keyed: Callable[..., RunningProxy], upstream_server: Any,
                             recorder: DemoRecorder) -> None:
    proxy = keyed(azure_upstream=upstream_server.url)
    client = openai.AzureOpenAI(azure_endpoint=proxy.server.url, api_version=AZURE_VERSION, api_key=OPS_KEY,
                                max_retries=0, timeout=20)
    assert client.chat.completions.create(model="my-deployment", messages=HELLO).choices
    assert "api-key" not in recorder.last().headers
    wrong = openai.AzureOpenAI(azure_endpoint=proxy.server.url, api_version=AZURE_VERSION, api_key="nope",
                               max_retries=0, timeout=20)
    with pytest.raises(openai.AuthenticationError):
        wrong.chat.completions.create(model="my-deployment", messages=HELLO)


def test_pass_through_paths_need_a_key_too(keyed: Callable[..., RunningProxy]) -> None:
    proxy = keyed()
    assert httpx.get(proxy.server.url + "/v1/models").status_code == 401
    assert proxy.client(api_key=OPS_KEY).models.list().data is not None
    # health and readiness stay open, for probes
    assert httpx.get(proxy.server.url + "/healthz").status_code == 200
    assert httpx.get(proxy.server.url + "/readyz").status_code == 200


def test_the_key_name_reaches_logs_and_metrics_and_the_key_never_does(
        keyed: Callable[..., RunningProxy], caplog: pytest.LogCaptureFixture) -> None:
    proxy = keyed()
    with caplog.at_level(logging.INFO):
        proxy.client(api_key=OPS_KEY).chat.completions.create(model="demo", messages=HELLO)
        httpx.post(proxy.server.url + "/v1/chat/completions", json={"model": "demo", "messages": HELLO},
                   headers={"authorization": "Bearer gp-guess"})
    access = [json.loads(r.getMessage()) for r in caplog.records if r.name == "guardproxy.access"]
    assert [line["key"] for line in access] == ["team-ops", None]
    assert [line["status"] for line in access] == [200, 401]
    logged = caplog.text
    assert OPS_KEY not in logged and "gp-guess" not in logged
    metrics = httpx.get(proxy.server.url + "/metrics", headers={"authorization": f"Bearer {OPS_KEY}"}).text
    assert 'guardproxy_client_requests_total{key="team-ops",route="chat",status_code="200",verdict="pass"} 1.0' \
        in metrics
    assert 'guardproxy_auth_failures_total{route="chat",status_code="401"} 1.0' in metrics
    assert OPS_KEY not in metrics


def test_an_invalid_keys_file_keeps_the_last_good_one(keyed: Callable[..., RunningProxy]) -> None:
    proxy = keyed()
    runtime = proxy.server._app.runtime  # type: ignore[attr-defined]
    path = keys_path(proxy)
    path.write_text(keys_yaml({"name": "broken", "sha256": "not-hex", "chain": "default"}))
    assert wait_until(lambda: runtime.reloads["rejected"] >= 1)
    assert proxy.client(api_key=OPS_KEY).chat.completions.create(model="demo", messages=HELLO).choices
    added = {"name": "team-new", "sha256": key_digest("gp-new-key"), "chain": "default"}
    path.write_text(keys_yaml(OPS, added))
    new_client = proxy.client(api_key="gp-new-key")

    def new_key_works() -> bool:
        try:
            new_client.chat.completions.create(model="demo", messages=HELLO)
        except openai.AuthenticationError:
            return False
        return True

    assert wait_until(new_key_works)
    assert proxy.client(api_key=OPS_KEY).chat.completions.create(model="demo", messages=HELLO).choices
    with pytest.raises(openai.AuthenticationError):  # team-support was removed from the file
        proxy.client(api_key=SUPPORT_KEY).chat.completions.create(model="demo", messages=HELLO)


def test_a_policy_reload_that_drops_a_key_chain_is_rejected(keyed: Callable[..., RunningProxy]) -> None:
    proxy = keyed()
    runtime = proxy.server._app.runtime  # type: ignore[attr-defined]
    proxy.policy_path.write_text(POLICY.replace("  strict:\n", "  other:\n").replace("chain: strict", "chain: other"))
    assert wait_until(lambda: runtime.reloads["rejected"] >= 1)
    assert runtime.reloads["ok"] == 0
    banned = [{"role": "user", "content": "tell me about zanzibar"}]
    with pytest.raises(openai.BadRequestError):  # team-support still runs the strict chain
        proxy.client(api_key=SUPPORT_KEY).chat.completions.create(model="demo", messages=banned)
