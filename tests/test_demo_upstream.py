"""The demo upstream must look like the real OpenAI API to the official SDK and to raw HTTP."""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletion, ChatCompletionMessageFunctionToolCall
from openai.types.chat.chat_completion_message_function_tool_call import Function

from guardproxy.demo import DemoRecorder, create_demo_upstream
from guardproxy.demo.replies import INVESTMENT_REPLY, PRIVATE_KEY_REPLY, split_into_pieces
from tests.servers import ThreadedServer

WEATHER_TOOLS: list[Any] = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {
                "type": "object",
                "properties": {
                    "city": {"type": "string"},
                    "days": {"type": "integer"},
                    "metric": {"type": "boolean"},
                    "hours": {"type": "array", "items": {"type": "integer"}},
                    "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                },
            },
        },
    },
    {
        "type": "function",
        "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}},
    },
]


@pytest.fixture(scope="module")
def demo_server() -> Iterator[tuple[str, DemoRecorder]]:
    """One server for the module; `recorder` resets it for every test."""
    app = create_demo_upstream()
    with ThreadedServer(app) as server:
        yield server.url + "/v1", app.state.recorder


@pytest.fixture
def recorder(demo_server: tuple[str, DemoRecorder]) -> DemoRecorder:
    demo_server[1].clear()
    return demo_server[1]


@pytest.fixture
def base_url(demo_server: tuple[str, DemoRecorder], recorder: DemoRecorder) -> str:
    return demo_server[0]


@pytest.fixture
def client(base_url: str) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=base_url, api_key="x", max_retries=0, timeout=10) as sdk_client:
        yield sdk_client


def user(text: str) -> list[Any]:
    return [{"role": "system", "content": "Be brief."}, {"role": "user", "content": text}]


def function_call(completion: ChatCompletion) -> Function:
    """The single function call of the first choice."""
    tool_calls = completion.choices[0].message.tool_calls
    assert tool_calls is not None and len(tool_calls) == 1
    assert isinstance(tool_calls[0], ChatCompletionMessageFunctionToolCall)
    assert tool_calls[0].type == "function" and tool_calls[0].id.startswith("call_")
    return tool_calls[0].function


def test_chat_completion_echoes_the_last_user_message(client: openai.OpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(model="demo", messages=user("hello there"))
    completion = raw.parse()

    assert completion.id.startswith("chatcmpl-")
    assert completion.object == "chat.completion"
    assert completion.model == "demo"
    assert completion.system_fingerprint
    [choice] = completion.choices
    assert (choice.index, choice.finish_reason) == (0, "stop")
    assert choice.message.role == "assistant"
    assert choice.message.content == "You said: hello there"
    assert choice.message.refusal is None
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (4, 4)
    assert completion.usage.total_tokens == 8
    assert raw.headers["x-request-id"].startswith("req_")
    assert int(raw.headers["openai-processing-ms"]) >= 0


def test_chat_reads_text_parts_and_answers_n_choices(client: openai.OpenAI) -> None:
    content: Any = [
        {"type": "text", "text": "look"},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
        {"type": "text", "text": "here"},
    ]
    completion = client.chat.completions.create(model="demo", n=3, messages=[{"role": "user", "content": content}])
    assert [choice.index for choice in completion.choices] == [0, 1, 2]
    assert {choice.message.content for choice in completion.choices} == {"You said: look here"}


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        ("Where should I INVEST my savings?", INVESTMENT_REPLY),
        ("print the private key please", PRIVATE_KEY_REPLY),
        ("what is our ssh key", PRIVATE_KEY_REPLY),
    ],
)
def test_chat_canned_replies(client: openai.OpenAI, prompt: str, expected: str) -> None:
    completion = client.chat.completions.create(model="demo", messages=user(prompt))
    assert completion.choices[0].message.content == expected


def test_reply_headers_force_the_text_including_non_ascii(client: openai.OpenAI) -> None:
    forced = client.chat.completions.create(
        model="demo", messages=user("invest"), extra_headers={"x-demo-reply": "Exactly this."}
    )
    unicode_text = "Grüße ✓ 日本"
    encoded = base64.b64encode(unicode_text.encode()).decode()
    forced_unicode = client.chat.completions.create(
        model="demo", messages=user("hi"), extra_headers={"x-demo-reply-b64": encoded}
    )
    assert forced.choices[0].message.content == "Exactly this."
    assert forced_unicode.choices[0].message.content == unicode_text


def test_streamed_chat_reassembles_to_the_plain_answer(client: openai.OpenAI) -> None:
    messages = user("tell me   something\nlong enough to need several pieces")
    plain = client.chat.completions.create(model="demo-large", messages=messages)
    chunks = list(
        client.chat.completions.create(
            model="demo-large",
            messages=messages,
            stream=True,
            stream_options={"include_usage": True},
        )
    )

    content_chunks = [chunk for chunk in chunks if chunk.choices]
    assert content_chunks[0].choices[0].delta.role == "assistant"
    streamed = "".join(chunk.choices[0].delta.content or "" for chunk in content_chunks)
    assert streamed == plain.choices[0].message.content
    assert len(content_chunks) > 4
    assert content_chunks[-1].choices[0].finish_reason == "stop"
    assert {chunk.id for chunk in chunks} == {chunks[0].id}
    assert {chunk.object for chunk in chunks} == {"chat.completion.chunk"}
    assert all(chunk.usage is None for chunk in content_chunks)
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None and plain.usage is not None
    assert chunks[-1].usage.total_tokens == plain.usage.total_tokens


def sse_payloads(base_url: str, body: dict[str, Any]) -> list[Any]:
    response = httpx.post(base_url + "/chat/completions", json={**body, "stream": True})
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["x-request-id"].startswith("req_")
    events = response.text.split("\n\n")
    assert events[-2:] == ["data: [DONE]", ""]
    return [json.loads(event.removeprefix("data: ")) for event in events[:-2]]


def test_raw_sse_wire_format(base_url: str) -> None:
    plain = sse_payloads(base_url, {"model": "demo", "messages": user("wire")})
    with_usage = sse_payloads(
        base_url,
        {"model": "demo", "messages": user("wire"), "stream_options": {"include_usage": True}},
    )

    assert all("usage" not in payload for payload in plain)
    assert plain[0]["choices"][0]["delta"] == {"role": "assistant", "content": "", "refusal": None}
    final_choice = {"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}
    assert plain[-1]["choices"][0] == final_choice
    assert all(payload["usage"] is None for payload in with_usage[:-1])
    assert with_usage[-1]["choices"] == []
    assert with_usage[-1]["usage"]["completion_tokens"] == 3


def test_streamed_choices_carry_their_own_index(base_url: str) -> None:
    payloads = sse_payloads(base_url, {"model": "demo", "messages": user("twice"), "n": 2})
    texts = {0: "", 1: ""}
    for payload in payloads:
        [choice] = payload["choices"]
        texts[choice["index"]] += choice["delta"].get("content", "")
    assert texts == {0: "You said: twice", 1: "You said: twice"}


def test_split_into_pieces_keeps_every_character() -> None:
    text = "  one two\tthree\n\nfour  "
    pieces = split_into_pieces(text)
    assert "".join(pieces) == text
    assert len(pieces) == 3


def test_tool_call_fills_arguments_from_the_schema(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(model="demo", messages=user("Paris in May"), tools=WEATHER_TOOLS)
    assert completion.choices[0].finish_reason == "tool_calls"
    assert completion.choices[0].message.content is None
    assert function_call(completion).name == "get_weather"
    assert json.loads(function_call(completion).arguments) == {
        "city": "Paris in May",
        "days": 0,
        "metric": False,
        "hours": [],
        "unit": "celsius",
    }


def test_tool_choice_picks_the_tool_or_switches_tools_off(client: openai.OpenAI) -> None:
    named = client.chat.completions.create(
        model="demo",
        messages=user("now"),
        tools=WEATHER_TOOLS,
        tool_choice={"type": "function", "function": {"name": "get_time"}},
    )
    off = client.chat.completions.create(model="demo", messages=user("now"), tools=WEATHER_TOOLS, tool_choice="none")
    call = {"id": "call_1", "type": "function", "function": {"name": "get_time", "arguments": "{}"}}
    tool_turn: list[Any] = [
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_1", "content": "noon"},
    ]
    after_tool_result = client.chat.completions.create(
        model="demo", tools=WEATHER_TOOLS, messages=[*user("weather?"), *tool_turn]
    )
    assert (function_call(named).name, function_call(named).arguments) == ("get_time", "{}")
    assert off.choices[0].message.content == "You said: now"
    assert after_tool_result.choices[0].message.content == "You said: weather?"


def test_streamed_tool_call_reassembles_to_valid_json(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(model="demo", messages=user("Oslo"), tools=WEATHER_TOOLS, stream=True)
    names, ids, argument_pieces, finish_reasons = [], [], [], []
    for chunk in stream:
        choice = chunk.choices[0]
        finish_reasons.append(choice.finish_reason)
        for delta in choice.delta.tool_calls or []:
            assert delta.index == 0
            if delta.id:
                ids.append(delta.id)
            if delta.function and delta.function.name:
                names.append(delta.function.name)
            if delta.function and delta.function.arguments:
                argument_pieces.append(delta.function.arguments)
    assert names == ["get_weather"] and len(ids) == 1
    assert len(argument_pieces) > 2
    assert json.loads("".join(argument_pieces))["city"] == "Oslo"
    assert finish_reasons[-1] == "tool_calls"


def test_legacy_completions_plain_and_streamed(client: openai.OpenAI) -> None:
    single = client.completions.create(model="demo", prompt="hi there")
    multiple = client.completions.create(model="demo", prompt=["a", "b"], n=2)
    streamed = list(client.completions.create(model="demo", prompt="stream me please", stream=True))

    assert single.object == "text_completion" and single.id.startswith("cmpl-")
    assert single.choices[0].text == " You said: hi there"
    assert single.choices[0].finish_reason == "stop"
    assert single.usage is not None and single.usage.prompt_tokens == 2
    assert [(choice.index, choice.text) for choice in multiple.choices] == [
        (0, " You said: a"),
        (1, " You said: a"),
        (2, " You said: b"),
        (3, " You said: b"),
    ]
    assert "".join(chunk.choices[0].text for chunk in streamed) == " You said: stream me please"
    assert streamed[-1].choices[0].finish_reason == "stop"


def test_embeddings_default_base64_are_deterministic_unit_vectors(
    client: openai.OpenAI, recorder: DemoRecorder
) -> None:
    first = client.embeddings.create(model="demo", input=["alpha", "beta"])
    assert recorder.last().json["encoding_format"] == "base64"
    again = client.embeddings.create(model="demo", input="alpha")
    as_floats = client.embeddings.create(model="demo", input="alpha", encoding_format="float")
    short = client.embeddings.create(model="demo", input=[[1, 2, 3]], dimensions=8)

    alpha, beta = (item.embedding for item in first.data)
    assert first.object == "list" and [item.index for item in first.data] == [0, 1]
    assert len(alpha) == 16 and math.isclose(math.fsum(v * v for v in alpha), 1.0, rel_tol=1e-5)
    assert alpha == again.data[0].embedding
    assert alpha != beta
    assert as_floats.data[0].embedding == pytest.approx(alpha, abs=1e-6)
    assert len(short.data[0].embedding) == 8
    assert short.usage.prompt_tokens == 3 and first.usage.total_tokens == 2


def test_models_list_and_retrieve(client: openai.OpenAI) -> None:
    models = client.models.list()
    assert [model.id for model in models.data] == ["demo", "demo-large", "gpt-4o-mini"]
    assert {model.owned_by for model in models.data} == {"guardproxy-demo"}
    assert client.models.retrieve("gpt-4o-mini").object == "model"
    with pytest.raises(openai.NotFoundError) as missing:
        client.models.retrieve("gpt-99")
    assert missing.value.code == "model_not_found"
    assert missing.value.type == "invalid_request_error"
