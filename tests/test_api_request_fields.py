"""Every request field where the Responses API, Anthropic Messages (and count_tokens)
and Azure's deployment paths carry text gets the input guards: a banned word there
is blocked (400 in the API's own shape, nothing reaches the upstream) and an email
there is redacted before the upstream sees it, in the same place and shape.

Each field is one ``Field``: how the API's own SDK sends a text in it, and where
that text sits in the body the upstream received.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import anthropic
import openai
import pytest

from tests.conftest import RunningProxy
from tests.scripted_upstream import Answer, ScriptedUpstream, chat_answer, messages_answer, responses_answer
from tests.servers import ThreadedServer

POLICY = """
version: 1
name: fields
messages: {input_blocked: "Blocked by fields."}
chains:
  default:
    input:
      - {name: banned, guard: keywords, action: block, terms: [zanzibar], label: banned}
      - {name: email, guard: pii, action: redact, nlp: pattern, entities: [EMAIL_ADDRESS]}
"""

BANNED = "Please book the ferry to Zanzibar for Tuesday."
EMAIL = "maria.gonzalez@example.org"
WITH_EMAIL = f"Send the itinerary to {EMAIL} before noon."
AZURE_VERSION = "2024-10-21"
DEPLOYMENT = "fields-deployment"

Body = dict[str, Any]


@dataclass(frozen=True)
class Field:
    name: str
    api: str  # responses, messages, count_tokens, azure
    send: Callable[[Any, str], Any]  # (the SDK client, the text) -> the SDK call's result
    found: Callable[[Body], Any]  # where the text sits in the body the upstream received
    answer: Answer

    def __str__(self) -> str:
        return self.name


def _responses(**request: Any) -> Callable[[Any, str], Any]:
    """A ``responses.create`` call; every string "TEXT" in ``request`` becomes the text."""
    return lambda client, text: client.responses.create(model="m", **_filled(request, text))


def _messages(**request: Any) -> Callable[[Any, str], Any]:
    return lambda client, text: client.messages.create(model="m", max_tokens=50, **_filled(request, text))


def _filled(value: Any, text: str) -> Any:
    if value == "TEXT":
        return text
    if value == "JSON(TEXT)":
        return json.dumps({"to": text, "meta": {"cc": [text], "urgent": True}})
    if isinstance(value, dict):
        return {key: _filled(item, text) for key, item in value.items()}
    if isinstance(value, list):
        return [_filled(item, text) for item in value]
    return value


def _user(content: Any) -> dict[str, Any]:
    return {"role": "user", "content": content}


_CALL = {"type": "function_call", "call_id": "call_1", "name": "send_mail", "arguments": "{}"}
_TOOL_USE = {"type": "tool_use", "id": "toolu_1", "name": "send_mail", "input": {"to": "the office"}}


def _tool_turns(tool_use: dict[str, Any], result: Any) -> list[dict[str, Any]]:
    return [_user("Mail it, please."), {"role": "assistant", "content": [tool_use]},
            _user([{"type": "tool_result", "tool_use_id": "toolu_1", "content": result}])]


RESPONSE = Answer(json=responses_answer("Done."))
MESSAGE = Answer(json=messages_answer("Done."))

FIELDS = [
    Field("responses.input string", "responses", _responses(input="TEXT"), lambda b: b["input"], RESPONSE),
    Field("responses.input message input_text", "responses",
          _responses(input=[{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "TEXT"}]}]),
          lambda b: b["input"][0]["content"][0]["text"], RESPONSE),
    Field("responses.instructions", "responses", _responses(instructions="TEXT", input="Go ahead."),
          lambda b: b["instructions"], RESPONSE),
    Field("responses.function_call_output string", "responses",
          _responses(input=[_CALL, {"type": "function_call_output", "call_id": "call_1", "output": "TEXT"}]),
          lambda b: b["input"][1]["output"], RESPONSE),
    Field("responses.function_call_output input_text", "responses",
          _responses(input=[_CALL, {"type": "function_call_output", "call_id": "call_1",
                                    "output": [{"type": "input_text", "text": "TEXT"}]}]),
          lambda b: b["input"][1]["output"][0]["text"], RESPONSE),
    Field("responses.function_call arguments", "responses",
          _responses(input=[{**_CALL, "arguments": "JSON(TEXT)"},
                            {"type": "function_call_output", "call_id": "call_1", "output": "sent"}]),
          lambda b: json.loads(b["input"][0]["arguments"])["meta"]["cc"][0], RESPONSE),
    Field("messages.system string", "messages", _messages(system="TEXT", messages=[_user("Hi.")]),
          lambda b: b["system"], MESSAGE),
    Field("messages.system text blocks", "messages",
          _messages(system=[{"type": "text", "text": "TEXT"}], messages=[_user("Hi.")]),
          lambda b: b["system"][0]["text"], MESSAGE),
    Field("messages.text block", "messages",
          _messages(messages=[_user([{"type": "text", "text": "Hello."}, {"type": "text", "text": "TEXT"}])]),
          lambda b: b["messages"][0]["content"][1]["text"], MESSAGE),
    Field("messages.tool_use input", "messages",
          _messages(messages=_tool_turns({**_TOOL_USE, "input": {"mail": {"to": ["TEXT"], "urgent": True}}}, "ok")),
          lambda b: b["messages"][1]["content"][0]["input"]["mail"]["to"][0], MESSAGE),
    Field("messages.tool_result string", "messages", _messages(messages=_tool_turns(_TOOL_USE, "TEXT")),
          lambda b: b["messages"][2]["content"][0]["content"], MESSAGE),
    Field("messages.tool_result text blocks", "messages",
          _messages(messages=_tool_turns(_TOOL_USE, [{"type": "text", "text": "TEXT"}])),
          lambda b: b["messages"][2]["content"][0]["content"][0]["text"], MESSAGE),
    Field("count_tokens.messages", "count_tokens",
          lambda client, text: client.messages.count_tokens(model="m", messages=[_user(text)]),
          lambda b: b["messages"][0]["content"], Answer(json={"input_tokens": 12})),
    Field("count_tokens.system", "count_tokens",
          lambda client, text: client.messages.count_tokens(model="m", system=text, messages=[_user("Hi.")]),
          lambda b: b["system"], Answer(json={"input_tokens": 12})),
    Field("azure.chat", "azure",
          lambda client, text: client.chat.completions.create(model=DEPLOYMENT, messages=[_user(text)]),
          lambda b: b["messages"][0]["content"], Answer(json=chat_answer({"content": "Done."}))),
    Field("azure.completions", "azure",
          lambda client, text: client.completions.create(model=DEPLOYMENT, prompt=text),
          lambda b: b["prompt"],
          Answer(json={"id": "cmpl-1", "object": "text_completion", "created": 1, "model": "m",
                       "choices": [{"index": 0, "text": "Done.", "logprobs": None, "finish_reason": "stop"}]})),
    Field("azure.embeddings", "azure",
          lambda client, text: client.embeddings.create(model=DEPLOYMENT, input=text, encoding_format="float"),
          lambda b: b["input"],
          Answer(json={"object": "list", "model": "m", "usage": {"prompt_tokens": 1, "total_tokens": 1},
                       "data": [{"object": "embedding", "index": 0, "embedding": [0.5, 0.25]}]})),
]


@pytest.fixture
def stack(scripted_server: tuple[ScriptedUpstream, ThreadedServer], start_proxy: Callable[..., RunningProxy]
          ) -> Iterator[tuple[RunningProxy, ScriptedUpstream]]:
    upstream, server = scripted_server
    upstream.script()
    yield start_proxy(policy=POLICY, upstream=server.url + "/v1", azure_upstream=server.url), upstream


def sdk_client(api: str, url: str) -> Any:
    if api == "responses":
        return openai.OpenAI(base_url=url + "/v1", api_key="sk-client", max_retries=0, timeout=20)
    if api == "azure":
        return openai.AzureOpenAI(azure_endpoint=url, api_version=AZURE_VERSION, api_key="azure-client-key",
                                  max_retries=0, timeout=20)
    return anthropic.Anthropic(base_url=url, api_key="sk-ant-client", max_retries=0, timeout=20)


@pytest.mark.parametrize("field", FIELDS, ids=str)
def test_banned_word_in_field_is_blocked(stack: tuple[RunningProxy, ScriptedUpstream], field: Field) -> None:
    proxy, upstream = stack
    upstream.script(field.answer)
    anthropic_api = field.api in ("messages", "count_tokens")
    error = anthropic.BadRequestError if anthropic_api else openai.BadRequestError
    with pytest.raises(error) as caught:
        field.send(sdk_client(field.api, proxy.url), BANNED)
    response = caught.value.response
    assert response.status_code == 400
    body = response.json()
    if anthropic_api:
        assert body["type"] == "error" and set(body) == {"type", "error"}
        details = body["error"]
        assert set(details) == {"type", "message", "guardrail"}
        assert details["type"] == "invalid_request_error"
    else:
        details = body["error"]
        assert (details["type"], details["code"]) == ("guardrail_violation", "policy_violation")
    assert details["message"] == "Blocked by fields."
    assert details["guardrail"]["stage"] == "input"
    assert "banned" in json.dumps(details["guardrail"]["violations"])
    assert upstream.received == []


@pytest.mark.parametrize("field", FIELDS, ids=str)
def test_email_in_field_is_redacted_before_the_upstream(stack: tuple[RunningProxy, ScriptedUpstream],
                                                       field: Field) -> None:
    proxy, upstream = stack
    upstream.script(field.answer)
    field.send(sdk_client(field.api, proxy.url), WITH_EMAIL)
    [received] = upstream.received
    assert EMAIL.encode() not in received.body
    sent = field.found(json.loads(received.body))
    assert isinstance(sent, str) and "EMAIL_ADDRESS" in sent
    assert sent.startswith("Send the itinerary to ") and sent.endswith(" before noon.")


def test_redacted_tool_use_input_stays_an_object(stack: tuple[RunningProxy, ScriptedUpstream]) -> None:
    proxy, upstream = stack
    upstream.script(MESSAGE)
    tool_use = {**_TOOL_USE, "input": {"to": EMAIL, "cc": [EMAIL, "the office"], "priority": 2, "urgent": True}}
    sdk_client("messages", proxy.url).messages.create(model="m", max_tokens=50,
                                                      messages=_tool_turns(tool_use, "sent"))
    sent = json.loads(upstream.received[0].body)["messages"][1]["content"][0]
    assert sent["type"] == "tool_use" and sent["id"] == "toolu_1"
    tool_input = sent["input"]
    assert isinstance(tool_input, dict)
    assert set(tool_input) == {"to", "cc", "priority", "urgent"}
    assert (tool_input["priority"], tool_input["urgent"], tool_input["cc"][1]) == (2, True, "the office")
    assert EMAIL not in json.dumps(tool_input) and "EMAIL_ADDRESS" in tool_input["to"]


def test_redacted_function_call_arguments_stay_valid_json(stack: tuple[RunningProxy, ScriptedUpstream]) -> None:
    proxy, upstream = stack
    upstream.script(RESPONSE)
    arguments = json.dumps({"to": EMAIL, "subject": 'Quote "this"', "copies": 3, "cc": [EMAIL]})
    sdk_client("responses", proxy.url).responses.create(model="m", input=[
        {**_CALL, "arguments": arguments},
        {"type": "function_call_output", "call_id": "call_1", "output": "sent"}])
    sent = json.loads(upstream.received[0].body)["input"][0]
    assert isinstance(sent["arguments"], str)
    parsed = json.loads(sent["arguments"])
    assert set(parsed) == {"to", "subject", "copies", "cc"}
    assert (parsed["subject"], parsed["copies"]) == ('Quote "this"', 3)
    assert EMAIL not in sent["arguments"] and "EMAIL_ADDRESS" in parsed["to"] and "EMAIL_ADDRESS" in parsed["cc"][0]
