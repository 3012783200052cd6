"""The demo upstream's `POST /v1/responses` must look like the real Responses API to the openai SDK."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

import httpx
import openai
import pytest
from openai.types.responses import Response, ResponseFunctionToolCall, ResponseOutputMessage

from guardproxy.demo import DemoRecorder
from tests.scripted_upstream import validated
from tests.servers import ThreadedServer

WEATHER_TOOLS: list[Any] = [
    {"type": "function", "name": "get_weather",
     "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}}}},
    {"type": "function", "name": "get_time", "parameters": {"type": "object", "properties": {}}},
]
REPLY = "The weather in Paris is mild and sunny today."

TEXT_EVENTS = ["response.created", "response.in_progress", "response.output_item.added",
               "response.content_part.added", "response.output_text.delta", "response.output_text.done",
               "response.content_part.done", "response.output_item.done", "response.completed"]
CALL_EVENTS = ["response.created", "response.in_progress", "response.output_item.added",
               "response.function_call_arguments.delta", "response.function_call_arguments.done",
               "response.output_item.done", "response.completed"]


@pytest.fixture
def client(upstream_server: ThreadedServer, recorder: DemoRecorder) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=upstream_server.url + "/v1", api_key="sk-test", max_retries=0, timeout=10) as sdk:
        yield sdk


def collapsed(types: Sequence[str]) -> list[str]:
    """Event types with each run of repeats (the deltas) shown once."""
    return [kind for index, kind in enumerate(types) if index == 0 or types[index - 1] != kind]


def raw_events(url: str, body: dict[str, Any], headers: dict[str, str] | None = None) -> list[tuple[str, str]]:
    """(event line, data line) pairs of a raw SSE answer, asserting each data line has its event line."""
    with httpx.stream("POST", url, json=body, headers=headers, timeout=10) as response:
        assert response.status_code == 200
        blocks = response.read().decode().split("\n\n")
    assert blocks[-1] == ""
    pairs = []
    for block in blocks[:-1]:
        event_line, data_line = block.split("\n")
        assert event_line.startswith("event: ") and data_line.startswith("data: ")
        pairs.append((event_line.removeprefix("event: "), data_line.removeprefix("data: ")))
    return pairs


def test_text_answer_is_a_complete_response_object(client: openai.OpenAI, upstream_server: ThreadedServer) -> None:
    response = client.responses.create(model="demo", input="What is the weather?", instructions="Be brief.",
                                       extra_headers={"x-demo-reply": REPLY})
    assert isinstance(response, Response)
    assert response.id.startswith("resp_") and response.object == "response" and response.status == "completed"
    assert response.model == "demo" and response.instructions == "Be brief."
    assert response.output_text == REPLY
    [message] = response.output
    assert isinstance(message, ResponseOutputMessage)
    assert message.id.startswith("msg_") and message.role == "assistant" and message.status == "completed"
    assert [part.type for part in message.content] == ["output_text"]
    assert response.usage is not None
    assert response.usage.total_tokens == response.usage.input_tokens + response.usage.output_tokens

    raw = httpx.post(upstream_server.url + "/v1/responses", json={"model": "demo", "input": "hi"}, timeout=10)
    assert validated(raw.json())["output"][0]["content"][0]["annotations"] == []


def test_input_items_are_read_like_the_real_api(client: openai.OpenAI) -> None:
    response = client.responses.create(model="demo", input=[
        {"role": "developer", "content": "Be brief."},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Tell me about Paris"}]},
    ])
    assert response.output_text == "You said: Tell me about Paris"


def test_offered_function_is_called_with_the_user_text(client: openai.OpenAI) -> None:
    response = client.responses.create(model="demo", input="Paris", tools=WEATHER_TOOLS)
    [call] = response.output
    assert isinstance(call, ResponseFunctionToolCall)
    assert call.id is not None and call.id.startswith("fc_") and call.call_id.startswith("call_")
    assert call.name == "get_weather" and call.status == "completed"
    assert json.loads(call.arguments) == {"city": "Paris", "days": 0}
    assert [tool.type for tool in response.tools] == ["function", "function"]


def test_tool_choice_and_function_output_steer_the_answer(client: openai.OpenAI) -> None:
    named = client.responses.create(model="demo", input="x", tools=WEATHER_TOOLS,
                                    tool_choice={"type": "function", "name": "get_time"})
    assert isinstance(named.output[0], ResponseFunctionToolCall) and named.output[0].name == "get_time"
    assert client.responses.create(model="demo", input="x", tools=WEATHER_TOOLS, tool_choice="none").output_text

    after_result = client.responses.create(model="demo", tools=WEATHER_TOOLS, input=[
        {"role": "user", "content": "Weather in Paris?"},
        {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": "{\"city\": \"Paris\"}"},
        {"type": "function_call_output", "call_id": "call_1", "output": "sunny"},
    ])
    assert after_result.output_text == "You said: Weather in Paris?"


def test_streamed_text_has_the_real_event_sequence(client: openai.OpenAI, recorder: DemoRecorder) -> None:
    events = list(client.responses.create(model="demo", input="hi", stream=True,
                                          extra_headers={"x-demo-reply": REPLY}))
    types = [event.type for event in events]
    assert collapsed(types) == TEXT_EVENTS
    assert types.count("response.output_text.delta") > 2
    assert [event.sequence_number for event in events] == list(range(len(events)))
    assert "".join(getattr(event, "delta", "") for event in events) == REPLY
    assert events[0].type == "response.created" and events[0].response.status == "in_progress"
    assert events[0].response.output == []
    done = events[-1]
    assert done.type == "response.completed" and done.response.output_text == REPLY
    item_id = done.response.output[0].id
    assert all(getattr(event, "item_id", item_id) == item_id for event in events)
    assert recorder.completed_streams == 1


def test_streamed_function_call_has_the_real_event_sequence(client: openai.OpenAI) -> None:
    events = list(client.responses.create(model="demo", input="Paris", tools=WEATHER_TOOLS, stream=True))
    types = [event.type for event in events]
    assert collapsed(types) == CALL_EVENTS
    assert types.count("response.function_call_arguments.delta") > 1
    added = events[2]
    assert added.type == "response.output_item.added" and added.item.type == "function_call"
    assert added.item.arguments == ""
    arguments = "".join(event.delta for event in events if event.type == "response.function_call_arguments.delta")
    assert json.loads(arguments) == {"city": "Paris", "days": 0}
    finished = [event for event in events if event.type == "response.function_call_arguments.done"]
    assert finished[0].arguments == arguments


def test_stream_helper_assembles_text_and_calls(client: openai.OpenAI) -> None:
    with client.responses.stream(model="demo", input="hi", extra_headers={"x-demo-reply": REPLY}) as stream:
        deltas = [event.delta for event in stream if event.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert "".join(deltas) == REPLY and final.output_text == REPLY

    with client.responses.stream(model="demo", input="Paris", tools=WEATHER_TOOLS) as stream:
        final = stream.get_final_response()
    assert isinstance(final.output[0], ResponseFunctionToolCall)
    assert json.loads(final.output[0].arguments)["city"] == "Paris"


def test_raw_stream_names_every_event_and_sends_no_done(upstream_server: ThreadedServer) -> None:
    body = {"model": "demo", "input": "Paris", "stream": True}
    for extra in ({}, {"tools": WEATHER_TOOLS}):
        pairs = raw_events(upstream_server.url + "/v1/responses", {**body, **extra})
        for name, data in pairs:
            assert data != "[DONE]"
            assert validated(json.loads(data))["type"] == name
    assert pairs[-1][0] == "response.completed"


def test_errors_are_openai_errors(client: openai.OpenAI, upstream_server: ThreadedServer) -> None:
    with pytest.raises(openai.BadRequestError) as no_input:
        client.responses.create(model="demo", extra_body={"input": None})
    assert no_input.value.param == "input"
    chat_shaped = [{"type": "function", "function": {"name": "get_weather", "parameters": {}}}]
    with pytest.raises(openai.BadRequestError) as bad_tools:
        client.responses.create(model="demo", input="x", tools=chat_shaped)
    assert bad_tools.value.param == "tools[0].name"
    with pytest.raises(openai.RateLimitError):
        client.responses.create(model="demo", input="x", extra_headers={"x-demo-status": "429"})
    with pytest.raises(openai.AuthenticationError):
        client.responses.create(model="demo", input="x", extra_headers={"x-demo-require-key": "sk-other"})
    assert client.responses.create(model="demo", input="x", extra_headers={"x-demo-require-key": "sk-test"}).output
