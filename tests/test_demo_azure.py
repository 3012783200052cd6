"""The demo upstream's Azure OpenAI deployment paths must look like Azure to `openai.AzureOpenAI`."""

from __future__ import annotations

import base64
import struct
from collections.abc import Iterator

import httpx
import openai
import pytest

from guardproxy.demo import DemoRecorder
from guardproxy.demo.embeddings import DEFAULT_DIMENSIONS, embedding_vector
from tests.servers import ThreadedServer

API_VERSION = "2024-10-21"
DEPLOYMENT = "prod-gpt4o"
REPLY = "Hello from the Azure deployment."
RESOURCE_NOT_FOUND = {"error": {"code": "404", "message": "Resource not found"}}


@pytest.fixture
def azure(upstream_server: ThreadedServer, recorder: DemoRecorder) -> Iterator[openai.AzureOpenAI]:
    with openai.AzureOpenAI(azure_endpoint=upstream_server.url, api_version=API_VERSION, api_key="azure-key",
                            max_retries=0, timeout=10) as sdk:
        yield sdk


def ask(text: str) -> list[openai.types.chat.ChatCompletionMessageParam]:
    return [{"role": "user", "content": text}]


def test_chat_answers_under_the_deployment_name(azure: openai.AzureOpenAI, recorder: DemoRecorder) -> None:
    completion = azure.chat.completions.create(model=DEPLOYMENT, messages=ask("hi"),
                                               extra_headers={"x-demo-reply": REPLY})
    assert completion.model == DEPLOYMENT and completion.choices[0].message.content == REPLY
    sent = recorder.last()
    assert sent.path == f"/openai/deployments/{DEPLOYMENT}/chat/completions"
    assert sent.headers["api-key"] == "azure-key" and "authorization" not in sent.headers

    chunks = list(azure.chat.completions.create(model=DEPLOYMENT, messages=ask("hi"), stream=True,
                                                extra_headers={"x-demo-reply": REPLY}))
    assert {chunk.model for chunk in chunks} == {DEPLOYMENT}
    assert "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices) == REPLY


def test_chat_tool_calls_work_on_a_deployment(azure: openai.AzureOpenAI) -> None:
    tools: list[openai.types.chat.ChatCompletionToolParam] = [{"type": "function", "function": {
        "name": "lookup", "parameters": {"type": "object", "properties": {"query": {"type": "string"}}}}}]
    completion = azure.chat.completions.create(model=DEPLOYMENT, messages=ask("Paris"), tools=tools)
    calls = completion.choices[0].message.tool_calls
    assert calls is not None and calls[0].type == "function"
    assert (calls[0].function.name, calls[0].function.arguments) == ("lookup", '{"query": "Paris"}')
    assert completion.choices[0].finish_reason == "tool_calls"


def test_completions_and_embeddings_answer_under_the_deployment_name(azure: openai.AzureOpenAI) -> None:
    completion = azure.completions.create(model=DEPLOYMENT, prompt="Say hi")
    assert completion.model == DEPLOYMENT and completion.choices[0].text == " You said: Say hi"

    embedding = azure.embeddings.create(model=DEPLOYMENT, input="same text")
    assert embedding.model == DEPLOYMENT
    assert embedding.data[0].embedding == pytest.approx(embedding_vector("same text", DEFAULT_DIMENSIONS), abs=1e-6)
    raw = azure.embeddings.with_raw_response.create(model=DEPLOYMENT, input="same text", encoding_format="base64")
    packed = base64.b64decode(raw.http_response.json()["data"][0]["embedding"])
    assert list(struct.unpack(f"<{DEFAULT_DIMENSIONS}f", packed)) == pytest.approx(embedding.data[0].embedding)


def test_missing_api_version_is_resource_not_found(upstream_server: ThreadedServer) -> None:
    url = f"{upstream_server.url}/openai/deployments/{DEPLOYMENT}/chat/completions"
    missing = httpx.post(url, json={"messages": ask("hi")}, headers={"api-key": "k"})
    assert (missing.status_code, missing.json()) == (404, RESOURCE_NOT_FOUND)
    assert httpx.post(url, params={"api-version": API_VERSION}, json={"messages": ask("hi")}).status_code == 200

    base = f"{upstream_server.url}/openai/deployments/{DEPLOYMENT}"
    with openai.OpenAI(base_url=base, api_key="k", max_retries=0) as unversioned, \
            pytest.raises(openai.NotFoundError) as raised:
        unversioned.chat.completions.create(model=DEPLOYMENT, messages=ask("hi"))
    assert raised.value.code == "404"


def test_unknown_azure_paths_are_resource_not_found(upstream_server: ThreadedServer) -> None:
    for path in (f"/openai/deployments/{DEPLOYMENT}/images/edits", "/openai/whatever"):
        answer = httpx.post(upstream_server.url + path, params={"api-version": API_VERSION}, json={})
        assert (answer.status_code, answer.json()) == (404, RESOURCE_NOT_FOUND)


def test_required_key_is_checked_against_the_api_key_header(
    azure: openai.AzureOpenAI, upstream_server: ThreadedServer
) -> None:
    require = {"x-demo-require-key": "azure-key"}
    assert azure.chat.completions.create(model=DEPLOYMENT, messages=ask("hi"), extra_headers=require).choices
    with pytest.raises(openai.AuthenticationError) as raised:
        azure.embeddings.create(model=DEPLOYMENT, input="x", extra_headers={"x-demo-require-key": "other-key"})
    assert raised.value.code == "401" and "Access denied" in raised.value.message

    url = f"{upstream_server.url}/openai/deployments/{DEPLOYMENT}/chat/completions"
    bearer_only = httpx.post(url, params={"api-version": API_VERSION}, json={"messages": ask("hi")},
                             headers={**require, "authorization": "Bearer azure-key"})
    assert bearer_only.status_code == 401


def test_request_errors_keep_the_openai_shape(azure: openai.AzureOpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as raised:
        azure.chat.completions.create(model=DEPLOYMENT, messages=[])
    assert raised.value.param == "messages"
    with pytest.raises(openai.RateLimitError):
        azure.completions.create(model=DEPLOYMENT, prompt="x", extra_headers={"x-demo-status": "429"})
