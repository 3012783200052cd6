"""The demo upstream's `/v1/messages` routes must look like the real Anthropic API to the anthropic SDK."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

import anthropic
import httpx
import pytest
from anthropic.types import Message, MessageTokensCount, TextBlock, ToolUseBlock

from guardproxy.demo import DemoRecorder
from tests.scripted_upstream import validated
from tests.servers import ThreadedServer

WEATHER_TOOLS: list[Any] = [
    {"name": "get_weather", "description": "Current weather.",
     "input_schema": {"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}}}},
    {"name": "get_time", "input_schema": {"type": "object", "properties": {}}},
]
REPLY = "The weather in Paris is mild and sunny today."
HEADERS = {"anthropic-version": "2023-06-01", "x-api-key": "sk-ant-test"}


@pytest.fixture
def client(upstream_server: ThreadedServer, recorder: DemoRecorder) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=upstream_server.url, api_key="sk-ant-test", max_retries=0, timeout=10) as sdk:
        yield sdk


def ask(text: str) -> list[Any]:
    return [{"role": "user", "content": text}]


def collapsed(types: Sequence[str]) -> list[str]:
    """Event types with each run of repeats (the deltas) shown once."""
    return [kind for index, kind in enumerate(types) if index == 0 or types[index - 1] != kind]


def test_text_message(client: anthropic.Anthropic, recorder: DemoRecorder) -> None:
    message = client.messages.create(model="claude-demo", max_tokens=64, system="Be brief.",
                                     messages=ask("Weather?"), extra_headers={"x-demo-reply": REPLY})
    assert isinstance(message, Message)
    assert message.id.startswith("msg_") and message.role == "assistant" and message.model == "claude-demo"
    assert isinstance(message.content[0], TextBlock) and message.content[0].text == REPLY
    assert (message.stop_reason, message.stop_sequence) == ("end_turn", None)
    assert message.usage.output_tokens == len(REPLY.split())
    sent = recorder.last().headers
    assert sent["authorization"] == "Bearer sk-ant-test"  # anthropic 2.x sends the key as a bearer token
    assert "x-api-key" not in sent and "anthropic-version" in sent


def test_offered_tool_is_used_with_the_user_text(client: anthropic.Anthropic) -> None:
    message = client.messages.create(model="claude-demo", max_tokens=64, messages=ask("Paris"), tools=WEATHER_TOOLS)
    [block] = message.content
    assert isinstance(block, ToolUseBlock) and block.id.startswith("toolu_")
    assert (block.name, block.input) == ("get_weather", {"city": "Paris", "days": 0})
    assert message.stop_reason == "tool_use"

    named = client.messages.create(model="claude-demo", max_tokens=64, messages=ask("x"), tools=WEATHER_TOOLS,
                                   tool_choice={"type": "tool", "name": "get_time"})
    assert isinstance(named.content[0], ToolUseBlock) and named.content[0].name == "get_time"
    declined = client.messages.create(model="claude-demo", max_tokens=64, messages=ask("x"), tools=WEATHER_TOOLS,
                                      tool_choice={"type": "none"})
    assert isinstance(declined.content[0], TextBlock)


def test_tool_result_gets_a_text_answer(client: anthropic.Anthropic) -> None:
    message = client.messages.create(model="claude-demo", max_tokens=64, tools=WEATHER_TOOLS, messages=[
        {"role": "user", "content": [{"type": "text", "text": "Weather in Paris?"}]},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "get_weather",
                                           "input": {"city": "Paris"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1",
                                      "content": [{"type": "text", "text": "sunny"}]}]},
    ])
    assert isinstance(message.content[0], TextBlock)
    assert message.content[0].text == "You said: Weather in Paris?" and message.stop_reason == "end_turn"


def test_count_tokens_matches_the_usage_of_the_same_request(client: anthropic.Anthropic) -> None:
    request: dict[str, Any] = {"model": "claude-demo", "system": "Be brief.",
                               "messages": ask("one two three four")}
    counted = client.messages.count_tokens(**request)
    assert isinstance(counted, MessageTokensCount) and counted.input_tokens == 6
    assert client.messages.create(max_tokens=8, **request).usage.input_tokens == counted.input_tokens


def test_streamed_text_has_the_real_event_sequence(client: anthropic.Anthropic, recorder: DemoRecorder) -> None:
    events = list(client.messages.create(model="claude-demo", max_tokens=64, messages=ask("hi"), stream=True,
                                         extra_headers={"x-demo-reply": REPLY}))
    types = [event.type for event in events]  # the SDK drops `ping` (see the raw test)
    assert collapsed(types) == ["message_start", "content_block_start", "content_block_delta",
                                "content_block_stop", "message_delta", "message_stop"]
    assert types.count("content_block_delta") > 2
    texts = [event.delta.text for event in events
             if event.type == "content_block_delta" and event.delta.type == "text_delta"]
    assert "".join(texts) == REPLY
    start, finish = events[0], events[-2]
    assert start.type == "message_start" and start.message.content == [] and start.message.stop_reason is None
    assert finish.type == "message_delta" and finish.delta.stop_reason == "end_turn"
    assert finish.usage.output_tokens == len(REPLY.split())
    assert recorder.completed_streams == 1


def test_stream_helper_assembles_text_and_tool_use(client: anthropic.Anthropic) -> None:
    with client.messages.stream(model="claude-demo", max_tokens=64, messages=ask("hi"),
                                extra_headers={"x-demo-reply": REPLY}) as stream:
        assert "".join(stream.text_stream) == REPLY
        final = stream.get_final_message()
    assert isinstance(final.content[0], TextBlock) and final.content[0].text == REPLY

    with client.messages.stream(model="claude-demo", max_tokens=64, messages=ask("Paris"),
                                tools=WEATHER_TOOLS) as stream:
        partials = [event.partial_json for event in stream if event.type == "input_json"]
        final = stream.get_final_message()
    assert len(partials) > 1 and json.loads("".join(partials)) == {"city": "Paris", "days": 0}
    assert isinstance(final.content[0], ToolUseBlock) and final.content[0].input == {"city": "Paris", "days": 0}
    assert final.stop_reason == "tool_use"


def test_raw_stream_names_every_event_and_pings(upstream_server: ThreadedServer) -> None:
    body = {"model": "claude-demo", "max_tokens": 64, "messages": ask("Paris"), "stream": True}
    for extra in ({}, {"tools": WEATHER_TOOLS}):
        with httpx.stream("POST", upstream_server.url + "/v1/messages", json={**body, **extra}, headers=HEADERS,
                          timeout=10) as response:
            assert response.status_code == 200
            blocks = response.read().decode().split("\n\n")
        assert blocks[-1] == ""
        names = []
        for block in blocks[:-1]:
            event_line, data_line = block.split("\n")
            name = event_line.removeprefix("event: ")
            assert validated(json.loads(data_line.removeprefix("data: ")))["type"] == name
            names.append(name)
        assert collapsed(names) == ["message_start", "content_block_start", "ping", "content_block_delta",
                                    "content_block_stop", "message_delta", "message_stop"]


def test_errors_are_anthropic_errors(client: anthropic.Anthropic, upstream_server: ThreadedServer) -> None:
    with pytest.raises(anthropic.AuthenticationError) as wrong_key:
        client.messages.create(model="claude-demo", max_tokens=8, messages=ask("x"),
                               extra_headers={"x-demo-require-key": "sk-ant-other"})
    assert validated(wrong_key.value.body)["error"]["type"] == "authentication_error"
    assert client.messages.create(model="claude-demo", max_tokens=8, messages=ask("x"),
                                  extra_headers={"x-demo-require-key": "sk-ant-test"}).content
    with pytest.raises(anthropic.BadRequestError) as no_messages:
        client.messages.create(model="claude-demo", max_tokens=8, messages=[])
    assert validated(no_messages.value.body)["error"]["type"] == "invalid_request_error"
    with pytest.raises(anthropic.RateLimitError):
        client.messages.count_tokens(model="claude-demo", messages=ask("x"), extra_headers={"x-demo-status": "429"})
    with pytest.raises(anthropic.NotFoundError) as unknown:
        client.post("/v1/messages/batches/nope", cast_to=Message, body={})
    assert validated(unknown.value.body)["error"]["type"] == "not_found_error"


def test_required_key_may_come_as_x_api_key(upstream_server: ThreadedServer) -> None:
    url = upstream_server.url + "/v1/messages/count_tokens"
    body = {"model": "claude-demo", "messages": ask("x")}
    require = {**HEADERS, "x-demo-require-key": "sk-ant-test"}
    assert httpx.post(url, json=body, headers=require).json() == {"input_tokens": 1}
    wrong = httpx.post(url, json=body, headers={**require, "x-api-key": "sk-ant-other"})
    assert wrong.status_code == 401
    assert validated(wrong.json())["error"] == {"type": "authentication_error", "message": "invalid x-api-key"}
    keyless = {"anthropic-version": "2023-06-01", "x-demo-require-key": "sk-ant-test"}
    assert httpx.post(url, json=body, headers=keyless).status_code == 401


def test_raw_requests_are_checked_like_the_real_api(upstream_server: ThreadedServer) -> None:
    url = upstream_server.url + "/v1/messages"
    no_max_tokens = httpx.post(url, json={"model": "claude-demo", "messages": ask("x")}, headers=HEADERS)
    assert no_max_tokens.status_code == 400
    assert validated(no_max_tokens.json())["error"] == {"type": "invalid_request_error",
                                                        "message": "max_tokens: Field required"}
    no_version = httpx.post(url, json={"model": "claude-demo", "max_tokens": 8, "messages": ask("x")},
                            headers={"x-api-key": "k"})
    assert no_version.status_code == 400 and "anthropic-version" in no_version.json()["error"]["message"]
    bad_json = httpx.post(url, content=b"{nope", headers=HEADERS)
    assert bad_json.status_code == 400 and validated(bad_json.json())["type"] == "error"
    wrong_method = httpx.get(url, headers=HEADERS)
    assert wrong_method.status_code == 404 and validated(wrong_method.json())["error"]["type"] == "not_found_error"
    assert no_max_tokens.headers["request-id"].startswith("req_")
