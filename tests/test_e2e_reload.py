"""Hot reload: a valid edit takes effect without a restart; an invalid one is
rejected with a precise log line and the previous policy stays in force."""

from __future__ import annotations

import gc
import logging
import os
import signal
import subprocess
import sys
import time
import weakref
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import httpx
import openai
import pytest

from guardproxy.config import Settings
from guardproxy.proxy.runtime import Runtime
from tests.conftest import BASIC_POLICY, RunningProxy, wait_until
from tests.servers import ThreadedServer, free_port

HELLO = [{"role": "user", "content": "please say the nuclear launch code"}]


def _policy_tag(proxy: RunningProxy) -> str:
    return httpx.get(proxy.url + "/v1/models").headers["x-guardproxy-policy"]


def test_valid_edit_is_picked_up(start_proxy: Callable[..., RunningProxy]) -> None:
    proxy = start_proxy()
    client = proxy.client()
    client.chat.completions.create(model="demo", messages=HELLO)  # input chain lets this through
    before = _policy_tag(proxy)
    proxy.policy_path.write_text(BASIC_POLICY.replace("terms: [forbidden phrase]", "terms: [launch code]"))
    assert wait_until(lambda: _policy_tag(proxy) != before)
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="demo", messages=HELLO)
    assert caught.value.body["message"] == "Blocked by test policy."  # type: ignore[index]


def test_invalid_edit_is_rejected_and_old_policy_stays(
    start_proxy: Callable[..., RunningProxy], caplog: pytest.LogCaptureFixture
) -> None:
    proxy = start_proxy()
    before = _policy_tag(proxy)
    caplog.set_level(logging.ERROR, logger="guardproxy.policy")
    proxy.policy_path.write_text(BASIC_POLICY.replace("action: block, terms: [forbidden", "action: blok, terms: [x"))
    assert wait_until(lambda: "reload rejected" in caplog.text)
    assert f"{proxy.policy_path}:9: chains.default.input.0.action:" in caplog.text
    assert _policy_tag(proxy) == before
    with pytest.raises(openai.BadRequestError):  # the old chain still blocks
        proxy.client().chat.completions.create(model="demo", messages=[{"role": "user", "content": "forbidden phrase"}])


def test_cli_serve_reloads_on_sighup(tmp_path: Path, upstream_server: ThreadedServer) -> None:
    """The real ``guardproxy serve`` process, with file watching off, reloads on SIGHUP."""
    policy = tmp_path / "p.yaml"
    policy.write_text(BASIC_POLICY)
    port = free_port()
    env = {**os.environ, "GUARDPROXY_WATCH": "false"}
    process = subprocess.Popen(
        [sys.executable, "-m", "guardproxy", "serve", "--upstream", upstream_server.url + "/v1",
         "--policy", str(policy), "--port", str(port)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        def up() -> bool:
            try:
                return httpx.get(url + "/readyz").status_code == 200
            except httpx.TransportError:
                return False

        assert wait_until(up, timeout=30)
        before = httpx.get(url + "/readyz").json()["policy"]
        policy.write_text(BASIC_POLICY.replace("forbidden phrase", "another phrase"))
        time.sleep(0.5)
        assert httpx.get(url + "/readyz").json()["policy"] == before  # not watching: no change yet
        process.send_signal(signal.SIGHUP)
        assert wait_until(lambda: httpx.get(url + "/readyz").json()["policy"] != before)
        response = httpx.post(url + "/v1/chat/completions", json={
            "model": "demo", "messages": [{"role": "user", "content": "another phrase"}]})
        assert response.status_code == 400
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=15)
    assert "policy reloaded (SIGHUP)" in output
    assert "Finished server process" in output  # a graceful stop (uvicorn re-raises SIGTERM after it)


def test_configmap_style_update_is_picked_up(start_proxy: Callable[..., RunningProxy], tmp_path: Path) -> None:
    """Kubernetes updates a mounted ConfigMap by swapping the ``..data`` symlink to a new directory;
    the files themselves are symlinks through it and never written."""
    mount = tmp_path / "configmap"
    mount.mkdir()
    first = mount / "..2026_01_01_v1"
    first.mkdir()
    (first / "policy.yaml").write_text(BASIC_POLICY)
    (mount / "..data").symlink_to(first.name)
    (mount / "policy.yaml").symlink_to("..data/policy.yaml")
    proxy = start_proxy(policy_dir=mount)
    before = _policy_tag(proxy)
    second = mount / "..2026_01_01_v2"
    second.mkdir()
    (second / "policy.yaml").write_text(BASIC_POLICY.replace("forbidden phrase", "launch code"))
    (mount / "..data_tmp").symlink_to(second.name)
    os.replace(mount / "..data_tmp", mount / "..data")
    assert wait_until(lambda: _policy_tag(proxy) != before)


async def test_reloads_drop_unused_guards_and_freeze_the_heap_only_at_start(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    freezes: list[None] = []
    monkeypatch.setattr(gc, "freeze", lambda: freezes.append(None))
    file = tmp_path / "policy.yaml"
    file.write_text(BASIC_POLICY)
    runtime = Runtime(replace(Settings(), policy=str(file)), None)
    try:
        await runtime.load_initial()
        (entry, *_) = runtime.policies.fallback.chains["default"].input
        first_guard = weakref.ref(runtime.engine.guard_for(entry))
        counts = []
        for n in range(4):
            file.write_text(BASIC_POLICY.replace("forbidden phrase", f"forbidden phrase {n}"))
            assert await runtime.reload("test")
            counts.append(runtime.engine.instance_count)
        assert first_guard() is None, "the guard built for the first policy was freed"
        assert counts == [counts[0]] * 4
        assert len(freezes) == 1, "gc.freeze runs once, after start-up"
    finally:
        runtime.engine.close()
