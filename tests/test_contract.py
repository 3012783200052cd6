"""The contract every guarded API keeps, through its own SDK: every action (block,
redact with restore, flag, annotate, monitor) on chat, text completions, embeddings,
the Responses API, Anthropic Messages and Azure chat, streamed and not, plus tool
calls whose arguments carry a banned word, a secret or the user's own PII.

Three things hold everywhere: no text a policy blocks or redacts reaches the client
or the upstream; the SDK's objects parse; a block on input raises the SDK's own
exception. One proxy (uvicorn, loopback) serves the whole module in front of the
scripted upstream, which answers in each API's exact shape.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest

from guardproxy.config import Settings
from guardproxy.http.app import create_app
from tests.contract_apis import APIS, DEPLOYMENT, Seen
from tests.scripted_upstream import ScriptedUpstream
from tests.servers import ThreadedServer

POLICY = """
version: 1
name: contract
messages: {input_blocked: "Blocked by contract.", output_blocked: "Withheld by contract."}
stream: {hold_back_chars: 16}
chains:
  default:
    input:
      - {name: banned, guard: keywords, action: block, terms: [zanzibar], label: banned}
      - {name: email, guard: pii, action: redact, restore: true, nlp: pattern, entities: [EMAIL_ADDRESS]}
    output:
      - {name: banned, guard: keywords, action: block, terms: [zanzibar], label: banned}
      - {name: secret, guard: keywords, action: redact, patterns: ['sk-[A-Za-z0-9]{20,}'], label: SECRET,
         case_sensitive: true}
      - {name: promise, guard: keywords, action: flag, terms: [guaranteed returns], label: promise}
      - {name: medical, guard: keywords, action: annotate, terms: [dosage], label: medical,
         note: "Not medical advice."}
      - {name: watch, guard: keywords, action: block, mode: monitor, terms: [watchword], label: watch}
"""

EMAIL = "maria.gonzalez@example.org"
SECRET = "sk-abcdefghijklmnopqrstuvwx"
STREAMED = [False, True]
OUTPUT_APIS = [api for api in APIS if api.output]
TOOL_APIS = [api for api in OUTPUT_APIS if api.name != "completions"]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, ScriptedUpstream]]:
    upstream = ScriptedUpstream()
    policies = tmp_path_factory.mktemp("contract")
    (policies / "policy.yaml").write_text(POLICY)
    with ThreadedServer(upstream.app()) as fake:
        settings = replace(Settings(), upstream=fake.url + "/v1", azure_upstream=fake.url, policy=str(policies),
                           watch=False)
        with ThreadedServer(create_app(settings, {})) as proxy:
            yield proxy.url, upstream


def exchange(stack: tuple[str, ScriptedUpstream], api: Any, user: str, stream: bool, text: str | None = None,
             call: tuple[str, str] | None = None) -> tuple[Seen, bytes]:
    """Script the upstream's answer, call the proxy through the API's SDK; what the client
    saw, and every byte the upstream received."""
    url, upstream = stack
    upstream.script(api.script(text, call, stream))
    seen = api.call(url, user, stream)
    return seen, upstream.bodies()


def ids(value: Any) -> str:
    return getattr(value, "name", None) or ("stream" if value is True else "json" if value is False else str(value))


@pytest.mark.parametrize("stream", STREAMED, ids=ids)
@pytest.mark.parametrize("api", APIS, ids=ids)
def test_input_block_raises_the_sdks_own_error_and_nothing_goes_upstream(stack: Any, api: Any, stream: bool) -> None:
    url, upstream = stack
    upstream.script(api.script("unused", None, stream))
    expected = anthropic.BadRequestError if api.name == "messages" else openai.BadRequestError
    with pytest.raises(expected) as raised:
        api.call(url, "Tell me everything about Zanzibar.", stream and api.output)
    assert upstream.received == []
    body = raised.value.body
    assert isinstance(body, dict)
    error = body.get("error", body)  # openai's exceptions carry the error object, anthropic's the whole body
    assert error["guardrail"]["violations"][0]["guard"] == "keywords"
    if api.name == "messages":
        assert body == {"type": "error", "error": {**body["error"], "type": "invalid_request_error",
                                                   "message": "Blocked by contract."}}
    else:
        assert error["code"] == "policy_violation" and error["message"] == "Blocked by contract."


@pytest.mark.parametrize("stream", STREAMED, ids=ids)
@pytest.mark.parametrize("api", APIS, ids=ids)
def test_input_pii_is_redacted_upstream_and_restored_for_the_client(stack: Any, api: Any, stream: bool) -> None:
    seen, sent = exchange(stack, api, f"Please write to {EMAIL} today.", stream and api.output,
                          text="I will write to <EMAIL_ADDRESS_1> today, as you asked.")
    assert EMAIL.encode() not in sent and b"<EMAIL_ADDRESS_1>" in sent
    if api.output:
        assert seen.text == f"I will write to {EMAIL} today, as you asked."
    assert seen.headers["x-guardproxy-verdict"] == "redacted"
    assert seen.headers["x-guardproxy-api"] == api.name


@pytest.mark.parametrize("stream", STREAMED, ids=ids)
@pytest.mark.parametrize("api", OUTPUT_APIS, ids=ids)
def test_output_block_withholds_the_banned_text(stack: Any, api: Any, stream: bool) -> None:
    seen, _ = exchange(stack, api, "Where is the base?", stream,
                       text="The base is plain to see. It sits in Zanzibar, near the harbour.")
    assert "zanzibar" not in seen.text.lower()
    assert seen.filtered
    if not stream:
        assert seen.headers["x-guardproxy-verdict"] == "blocked"
        assert seen.text == "Withheld by contract."


@pytest.mark.parametrize("stream", STREAMED, ids=ids)
@pytest.mark.parametrize("api", OUTPUT_APIS, ids=ids)
def test_output_secret_is_redacted(stack: Any, api: Any, stream: bool) -> None:
    seen, _ = exchange(stack, api, "What is the key?", stream,
                       text=f"The key you need is {SECRET} and nothing else.")
    assert seen.text == "The key you need is [SECRET] and nothing else."
    assert not seen.filtered


@pytest.mark.parametrize("stream", STREAMED, ids=ids)
@pytest.mark.parametrize("api", OUTPUT_APIS, ids=ids)
def test_flag_and_monitor_pass_the_text_unchanged(stack: Any, api: Any, stream: bool) -> None:
    text = "We offer guaranteed returns. The watchword is patience, as always."
    seen, _ = exchange(stack, api, "Any advice?", stream, text=text)
    assert seen.text == text and not seen.filtered
    if not stream:
        assert seen.headers["x-guardproxy-verdict"] == "flagged"  # monitor never changes the verdict


@pytest.mark.parametrize("stream", STREAMED, ids=ids)
@pytest.mark.parametrize("api", OUTPUT_APIS, ids=ids)
def test_annotate_appends_the_note(stack: Any, api: Any, stream: bool) -> None:
    text = "Take the usual dosage twice a day with water."
    seen, _ = exchange(stack, api, "How much?", stream, text=text)
    assert seen.text == text + "\n\nNot medical advice."


@pytest.mark.parametrize("stream", STREAMED, ids=ids)
@pytest.mark.parametrize("api", TOOL_APIS, ids=ids)
def test_tool_call_with_a_banned_word_is_withheld(stack: Any, api: Any, stream: bool) -> None:
    seen, _ = exchange(stack, api, "Book it.", stream, call=("book_trip", json.dumps({"city": "Zanzibar"})))
    assert "zanzibar" not in seen.arguments.lower() and "zanzibar" not in seen.text.lower()
    assert seen.filtered


@pytest.mark.parametrize("stream", STREAMED, ids=ids)
@pytest.mark.parametrize("api", TOOL_APIS, ids=ids)
def test_tool_call_secret_is_redacted_and_the_arguments_stay_json(stack: Any, api: Any, stream: bool) -> None:
    seen, _ = exchange(stack, api, "Store it.", stream, call=("store", json.dumps({"value": SECRET, "n": 2})))
    assert SECRET not in seen.arguments
    assert json.loads(seen.arguments) == {"value": "[SECRET]", "n": 2}
    assert not seen.filtered


@pytest.mark.parametrize("stream", STREAMED, ids=ids)
@pytest.mark.parametrize("api", TOOL_APIS, ids=ids)
def test_tool_call_gets_the_users_own_email_back(stack: Any, api: Any, stream: bool) -> None:
    seen, sent = exchange(stack, api, f"Mail {EMAIL} the minutes.", stream,
                          call=("send_mail", json.dumps({"to": "<EMAIL_ADDRESS_1>"})))
    assert EMAIL.encode() not in sent
    assert json.loads(seen.arguments) == {"to": EMAIL}


def test_azure_deployment_names_the_model_and_takes_the_api_key(stack: Any) -> None:
    _url, upstream = stack
    azure = next(api for api in APIS if api.name == "azure_chat")
    seen, _ = exchange(stack, azure, "hello", False, text="hi there")
    received = upstream.received[0]
    assert received.path == f"/openai/deployments/{DEPLOYMENT}/chat/completions"
    assert received.query == "api-version=2024-10-21"
    assert received.headers.get("api-key") == "azure-client-key"
    assert seen.text == "hi there" and seen.headers["x-guardproxy-api"] == "azure_chat"


def test_anthropic_requests_keep_their_version_header_and_key(stack: Any) -> None:
    _url, upstream = stack
    messages = next(api for api in APIS if api.name == "messages")
    exchange(stack, messages, "hello", False, text="hi")
    headers = upstream.received[0].headers
    assert upstream.received[0].path == "/v1/messages"
    assert "anthropic-version" in headers
    assert "sk-ant-client" in (headers.get("x-api-key", "") + headers.get("authorization", ""))


def test_policy_file_is_what_the_suite_says(tmp_path: Path) -> None:
    """The suite's policy loads (a typo would make every case above pass vacuously)."""
    from guardproxy.policy import load_policy_set

    (tmp_path / "p.yaml").write_text(POLICY)
    chain = load_policy_set(str(tmp_path)).policies[0].policy.chains["default"]
    assert [e.action for e in chain.output] == ["block", "redact", "flag", "annotate", "block"]
