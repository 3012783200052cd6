"""Shared fixtures: the demo upstream and proxies under uvicorn on loopback ports."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import openai
import pytest
from starlette.applications import Starlette

from guardproxy.config import Settings
from guardproxy.demo import DemoRecorder, create_demo_upstream
from guardproxy.http.app import create_app
from guardproxy.proxy.upstream import GuardUpstreamClient, create_client
from tests.scripted_upstream import ScriptedUpstream
from tests.servers import ThreadedServer

REPO = Path(__file__).resolve().parent.parent

BASIC_POLICY = """
version: 1
name: testpolicy
messages: {input_blocked: "Blocked by test policy.", output_blocked: "Withheld by test policy."}
stream: {hold_back_chars: 24}
chains:
  default:
    input:
      - {name: banned, guard: keywords, action: block, terms: [forbidden phrase], label: banned}
      - {name: secrets, guard: keywords, action: redact, patterns: ['sk-[A-Za-z0-9]{20,}'], label: SECRET,
         case_sensitive: true}
    output:
      - {name: stopword, guard: keywords, action: block, terms: [nuclear launch code], label: stopword}
      - {name: secrets, guard: keywords, action: redact, patterns: ['sk-[A-Za-z0-9]{20,}'], label: SECRET,
         case_sensitive: true}
      - {name: promise, guard: keywords, action: flag, terms: [guaranteed returns], label: promise}
"""


@pytest.fixture(scope="session")
def upstream_app() -> Starlette:
    return create_demo_upstream()


@pytest.fixture(scope="session")
def upstream_server(upstream_app: Starlette) -> Iterator[ThreadedServer]:
    with ThreadedServer(upstream_app) as server:
        yield server


@pytest.fixture
def recorder(upstream_app: Starlette, upstream_server: ThreadedServer) -> DemoRecorder:
    rec: DemoRecorder = upstream_app.state.recorder
    rec.clear()
    return rec


class RunningProxy:
    def __init__(self, server: ThreadedServer, policy_path: Path) -> None:
        self.server = server
        self.policy_path = policy_path
        self.url = server.url

    def stream_reply(self, reply: str, user: str = "hi") -> tuple[str, list[str]]:
        """Stream a chat answer the demo upstream is told to give; returns the text
        the client received and the finish reasons it saw."""
        pieces, finishes = [], []
        stream = self.client().chat.completions.create(
            model="demo", messages=[{"role": "user", "content": user}], stream=True,
            extra_headers={"x-demo-reply": reply},
        )
        for chunk in stream:
            for choice in chunk.choices:
                pieces.append(choice.delta.content or "")
                if choice.finish_reason:
                    finishes.append(choice.finish_reason)
        return "".join(pieces), finishes

    def client(self, **kwargs: Any) -> openai.OpenAI:
        return openai.OpenAI(base_url=self.url + "/v1", api_key=kwargs.pop("api_key", "sk-client-key"),
                             max_retries=0, timeout=kwargs.pop("timeout", 20), **kwargs)


@pytest.fixture
def start_proxy(
    upstream_server: ThreadedServer, tmp_path: Path
) -> Iterator[Callable[..., RunningProxy]]:
    started: list[ThreadedServer] = []

    def start(policy: str = BASIC_POLICY, environ: dict[str, str] | None = None, policy_dir: Path | None = None,
              **overrides: Any) -> RunningProxy:
        if policy_dir is None:
            policy_dir = tmp_path / f"policies{len(started)}"
            policy_dir.mkdir()
            (policy_dir / "policy.yaml").write_text(policy)
        overrides = {"upstream": upstream_server.url + "/v1", "policy": str(policy_dir), **overrides}
        settings = replace(Settings(), **overrides)
        server = ThreadedServer(create_app(settings, environ or {}))
        server.start()
        started.append(server)
        return RunningProxy(server, policy_dir / "policy.yaml")

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def scripted_server() -> Iterator[tuple[ScriptedUpstream, ThreadedServer]]:
    """The upstream that answers what a test scripts (``scripted_upstream.py``)."""
    upstream = ScriptedUpstream()
    with ThreadedServer(upstream.app()) as server:
        yield upstream, server


@pytest.fixture
def start_scripted_proxy(scripted_server: tuple[ScriptedUpstream, ThreadedServer],
                         start_proxy: Callable[..., RunningProxy]
                         ) -> Callable[[str], tuple[RunningProxy, ScriptedUpstream]]:
    """A proxy with ``policy`` in front of the scripted upstream, whose script and record start empty."""
    upstream, server = scripted_server

    def start(policy: str) -> tuple[RunningProxy, ScriptedUpstream]:
        upstream.script()
        return start_proxy(policy=policy, upstream=server.url + "/v1"), upstream

    return start


@pytest.fixture
def proxy(start_proxy: Callable[..., RunningProxy]) -> RunningProxy:
    return start_proxy()


@pytest.fixture
async def guard_upstream(upstream_server: ThreadedServer) -> AsyncIterator[GuardUpstreamClient]:
    """The guards' upstream client on the test's event loop, as the proxy gives it to ``io`` guards."""
    client = create_client(2.0, 5.0, 4)
    try:
        yield GuardUpstreamClient(client, upstream_server.url + "/v1", "Bearer sk-test")
    finally:
        await client.aclose()


# Personal values the shipped default policy redacts; tests check none of them leaks anywhere.
PII_VALUES = ["Maria Gonzalez", "maria.gonzalez@example.org", "4111 1111 1111 1111", "+1 415 555 0132",
              "ghp_Zq8mR2vX7pL0nB4tK9wE1cY6uH3sF5gA8dJ2"]


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


_SERVER_FIXTURES = frozenset({"upstream_server", "start_proxy", "proxy", "recorder", "guard_upstream", "scripted"})
_E2E_MODULES = frozenset({"test_prometheus_integration", "test_deploy", "test_cli", "test_metrics_multiprocess"})


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests that start a server (the proxy, an upstream, Prometheus, a subprocess) are ``e2e``;
    ``make test-fast`` runs the others."""
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        module = item.module.__name__.split(".")[-1] if item.module is not None else ""
        if fixtures & _SERVER_FIXTURES or module in _E2E_MODULES:
            item.add_marker(pytest.mark.e2e)
