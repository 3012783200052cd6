"""The proxy the request-path fuzz tests run against, and what they check of its replies.

The scripted upstream (``scripted_upstream.py``) and, in front of it, a proxy with
input and output guards on every API (keywords block and redact, PII redaction with
restore, flag, annotate), on loopback; a log handler that catches what the proxy
contains but must never happen (an unhandled exception, a guard that raised).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai

from guardproxy.config import Settings
from guardproxy.http.app import create_app
from guardproxy.proxy.dialects import DIALECTS, apply_texts
from tests.conftest import wait_until
from tests.contract_apis import AZURE_VERSION, DEPLOYMENT
from tests.scripted_upstream import ScriptedUpstream
from tests.servers import ThreadedServer

POLICY = """
version: 1
name: fuzz
stream: {hold_back_chars: 16}
chains:
  default:
    input:
      - {name: banned, guard: keywords, action: block, terms: [zanzibar], label: banned}
      - {name: secret, guard: keywords, action: redact, patterns: ['sk-[A-Za-z0-9]{20,}'], label: SECRET,
         case_sensitive: true}
      - {name: pii, guard: pii, action: redact, restore: true, nlp: pattern, entities: [EMAIL_ADDRESS, PHONE_NUMBER]}
    output:
      - {name: banned, guard: keywords, action: block, terms: [zanzibar], label: banned}
      - {name: secret, guard: keywords, action: redact, patterns: ['sk-[A-Za-z0-9]{20,}'], label: SECRET,
         case_sensitive: true}
      - {name: pii, guard: pii, action: redact, nlp: pattern, entities: [EMAIL_ADDRESS]}
      - {name: promise, guard: keywords, action: flag, terms: [guaranteed], label: promise}
      - {name: medical, guard: keywords, action: annotate, terms: [dosage, mail], label: medical, note: "A note."}
"""

_AZURE = f"/openai/deployments/{DEPLOYMENT}"
PATHS = {
    "chat": "/v1/chat/completions", "completions": "/v1/completions", "embeddings": "/v1/embeddings",
    "responses": "/v1/responses", "messages": "/v1/messages", "count_tokens": "/v1/messages/count_tokens",
    "azure_chat": f"{_AZURE}/chat/completions", "azure_completions": f"{_AZURE}/completions",
    "azure_embeddings": f"{_AZURE}/embeddings", "check": "/v1/guardrails/check",
}
ANTHROPIC_SHAPED = {"messages", "count_tokens"}
DIALECT_OF = {d.name: d for d in DIALECTS.values()}


# -- what came back ------------------------------------------------------------------------------------------

class Crashes(logging.Handler):
    """Unhandled exceptions the proxy contained (its log says ``unhandled ...``) and guards
    that raised (``guard NAME (TYPE) error: ...``), as they happen in the server's thread."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.seen: list[str] = []
        self.guard = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        guard_failed = str(record.msg).startswith("guard ") and len(record.args or ()) > 2 \
            and record.args[2] == "error"  # type: ignore[index]
        if record.getMessage().startswith("unhandled") or guard_failed or "dropped finding" in str(record.msg):
            with self.guard:
                self.seen.append(record.getMessage())

    def take(self) -> list[str]:
        with self.guard:
            seen, self.seen = self.seen, []
        return seen


@dataclass
class Stack:
    url: str
    upstream: ScriptedUpstream
    client: httpx.Client
    crashes: Crashes
    sdks: dict[str, Any] = field(default_factory=dict)


@contextmanager
def running_stack(policies: Path) -> Iterator[Stack]:
    """The scripted upstream and a proxy with ``POLICY`` in front of it, for every API."""
    upstream = ScriptedUpstream()
    (policies / "policy.yaml").write_text(POLICY)
    crashes = Crashes()
    logger = logging.getLogger("guardproxy")
    logger.addHandler(crashes)
    try:
        with ThreadedServer(upstream.app()) as fake:
            settings = replace(Settings(), upstream=fake.url + "/v1", azure_upstream=fake.url,
                               policy=str(policies), watch=False, max_body_bytes=256 * 1024)
            with ThreadedServer(create_app(settings, {})) as proxy, httpx.Client(timeout=30) as client:
                yield Stack(proxy.url, upstream, client, crashes, sdk_clients(proxy.url))
    finally:
        logger.removeHandler(crashes)


def assert_error_shape(api: str, status: int, body: Any) -> None:
    if api in ANTHROPIC_SHAPED:
        assert isinstance(body, dict) and body.get("type") == "error", body
        error = body.get("error")
        assert isinstance(error, dict) and isinstance(error.get("type"), str), body
    else:
        error = body.get("error") if isinstance(body, dict) else None
        assert isinstance(error, dict) and isinstance(error.get("type"), str), body
        assert {"param", "code"} <= set(error), body
    assert isinstance(error.get("message"), str) and error["message"], body


BROKEN_OFF = (httpx.TransportError, openai.APIConnectionError, anthropic.APIConnectionError)


@contextmanager
def answered_whole(stack: Stack, what: str) -> Iterator[None]:
    """A client error for an answer cut off mid-way is the proxy crashing while it answered:
    fail with what it logged (its log line may come just after the connection closed)."""
    try:
        yield
    except BROKEN_OFF as exc:
        wait_until(lambda: bool(stack.crashes.seen), timeout=2.0)
        raise AssertionError(f"{what}: the answer was cut off ({type(exc).__name__}); "
                             f"the proxy logged {stack.crashes.take()}") from None


def assert_no_crash(stack: Stack, what: str, status: int | None = None, text: str = "") -> None:
    crashes = stack.crashes.take()
    assert not crashes, f"{what}: the proxy logged {crashes}"
    if status is not None:
        assert status < 500, f"{what}: {status} {text[:400]}"


def texts_masked(api: str, body: bytes) -> str:
    """The body as a JSON value with every text the guards see emptied (and the proxy's own
    ``guardproxy`` field gone): what the proxy must forward unchanged."""
    value = json.loads(body)
    value.pop("guardproxy", None)
    dialect = DIALECT_OF[api.removeprefix("azure_")]
    apply_texts(value, [(segment, "") for segment in dialect.request_segments(value)])
    return json.dumps(value, ensure_ascii=False)


def assert_only_texts_changed(stack: Stack, api: str, body: bytes) -> None:
    """What reached the upstream is the client's body, or it re-serialised with only the
    guarded texts changed: no number, key or structure rewritten on the way."""
    received = [r.body for r in stack.upstream.received if r.method == "POST"]
    if api == "check" or not received or received == [body]:
        return
    assert len(received) == 1, received
    assert texts_masked(api, received[0]) == texts_masked(api, body), (body, received[0])


def post(stack: Stack, api: str, body: bytes, headers: dict[str, str], method: str = "POST",
         path: str | None = None) -> httpx.Response:
    stack.upstream.script()
    query = {"api-version": AZURE_VERSION} if api.startswith("azure") else {}
    headers = {"authorization": "Bearer sk-client", "x-api-key": "sk-ant-client", "api-key": "azure-key", **headers}
    return stack.client.request(method, stack.url + (path or PATHS[api]), content=body, headers=headers,
                                params=query)


def sdk_clients(url: str) -> dict[str, Any]:
    """One client per SDK, made once: each new client is a new connection pool."""
    return {"openai": openai.OpenAI(base_url=url + "/v1", api_key="sk-client", max_retries=0, timeout=30),
            "azure": openai.AzureOpenAI(azure_endpoint=url, api_version=AZURE_VERSION, api_key="azure-key",
                                        max_retries=0, timeout=30),
            "anthropic": anthropic.Anthropic(base_url=url, api_key="sk-ant-client", max_retries=0, timeout=30)}


def sdk_call(stack: Stack, api: str, payload: dict[str, Any]) -> Any:
    """The request through the API's own SDK client."""
    oai, azure, claude = stack.sdks["openai"], stack.sdks["azure"], stack.sdks["anthropic"]
    create = {"chat": oai.chat.completions.create, "azure_chat": azure.chat.completions.create,
              "completions": oai.completions.create, "embeddings": oai.embeddings.create,
              "responses": oai.responses.create, "messages": claude.messages.create,
              "count_tokens": claude.messages.count_tokens}[api]
    return create(**({**payload, "model": DEPLOYMENT} if api == "azure_chat" else payload))
