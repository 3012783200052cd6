"""Failure and edge behaviour of the Responses API, Anthropic Messages and Azure's deployment
paths, each in the API's own error shape and status: bad requests, unknown paths, upstreams and
their keys, path spellings, routes by API, the ``x-guardproxy-api`` header, upstream streams that
break or end early, text without deltas, several content blocks, and well-formed blocked streams.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import anthropic
import httpx
import openai
import pytest
from anthropic.types import RawMessageStreamEvent
from openai.types.responses import ResponseStreamEvent
from pydantic import TypeAdapter
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.routing import Route

from tests.conftest import RunningProxy
from tests.scripted_upstream import Answer, ScriptedUpstream, chat_answer, messages_events, responses_events, split
from tests.servers import ThreadedServer

POLICY = """
version: 1
name: edges
messages: {input_blocked: "Blocked by edges.", output_blocked: "Withheld by edges."}
stream: {hold_back_chars: 16}
chains:
  default:
    input:
      - {name: banned, guard: keywords, action: block, terms: [zanzibar], label: banned}
    output:
      - {name: banned, guard: keywords, action: block, terms: [zanzibar], label: banned}
"""
ROUTED = """
version: 1
name: routed
chains:
  default:
    input: [{name: banned, guard: keywords, action: block, terms: [zanzibar], label: banned}]
  strict:
    input: [{name: strict, guard: keywords, action: block, terms: [kumquat], label: strict}]
routes:
  - {match: {api: "API"}, chain: strict}
"""
AZURE_VERSION = "2024-10-21"
HELLO = [{"role": "user", "content": "Hello."}]
STORY = ["Hello there, ", "friend. The ", "island we want ", "is Zanzibar, ", "at dawn."]


def _chat(text: str) -> dict[str, Any]:
    return {"model": "m", "messages": [{"role": "user", "content": text}]}


def _messages(text: str) -> dict[str, Any]:
    return {"model": "m", "max_tokens": 20, "messages": [{"role": "user", "content": text}]}


# Every guarded API: its name, a path the proxy serves it on, and a request carrying a text.
AZURE = f"/openai/deployments/dep/%s?api-version={AZURE_VERSION}"
BodyOf = Callable[[str], dict[str, Any]]  # a request body carrying a text
APIS: list[tuple[str, str, BodyOf]] = [
    ("chat", "/v1/chat/completions", _chat),
    ("completions", "/v1/completions", lambda text: {"model": "m", "prompt": text}),
    ("embeddings", "/v1/embeddings", lambda text: {"model": "m", "input": text}),
    ("responses", "/v1/responses", lambda text: {"model": "m", "input": text}),
    ("messages", "/v1/messages", _messages),
    ("count_tokens", "/v1/messages/count_tokens", lambda text: {"model": "m", "messages": _chat(text)["messages"]}),
    ("azure_chat", AZURE % "chat/completions", lambda text: {"messages": _chat(text)["messages"]}),
    ("azure_completions", AZURE % "completions", lambda text: {"prompt": text}),
    ("azure_embeddings", AZURE % "embeddings", lambda text: {"input": text}),
]
Scripted = Callable[..., tuple[RunningProxy, ScriptedUpstream]]  # the `scripted` fixture


@pytest.fixture
def scripted(scripted_server: tuple[ScriptedUpstream, ThreadedServer], start_proxy: Callable[..., RunningProxy]
             ) -> Scripted:
    """A proxy in front of the scripted upstream for every API (OpenAI, Anthropic, Azure)."""
    upstream, server = scripted_server

    def start(policy: str = POLICY, **settings: Any) -> tuple[RunningProxy, ScriptedUpstream]:
        upstream.script()
        proxy = start_proxy(policy=policy, upstream=server.url + "/v1", azure_upstream=server.url, **settings)
        return proxy, upstream

    return start


@pytest.fixture(scope="module")
def breaking_server() -> Iterator[tuple[list[dict[str, Any]], ThreadedServer]]:
    """An upstream that streams the events a test puts in its list, then drops the connection."""
    events: list[dict[str, Any]] = []

    async def endpoint(request: Request) -> StreamingResponse:
        async def body() -> Any:
            for event in list(events):
                yield f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode()
            raise ConnectionAbortedError("the test upstream drops the connection mid-stream")

        return StreamingResponse(body(), media_type="text/event-stream")

    with ThreadedServer(Starlette(routes=[Route("/{path:path}", endpoint, methods=["POST"])])) as server:
        yield events, server


def anthropic_client(url: str, **kwargs: Any) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=url, api_key="sk-ant-client", max_retries=0, timeout=20, **kwargs)


def azure_client(url: str, **kwargs: Any) -> openai.AzureOpenAI:
    return openai.AzureOpenAI(azure_endpoint=url, api_version=AZURE_VERSION, api_key="azure-client-key",
                              max_retries=0, timeout=20, **kwargs)


def assert_anthropic_error(response: httpx.Response, status: int, error_type: str) -> dict[str, Any]:
    assert response.status_code == status
    body = response.json()
    assert set(body) == {"type", "error"} and body["type"] == "error"
    assert body["error"]["type"] == error_type and isinstance(body["error"]["message"], str)
    return dict(body["error"])


def sse_events(raw: bytes) -> list[tuple[str | None, dict[str, Any]]]:
    """(event name, data) of each SSE event; comments are skipped."""
    events = []
    for block in raw.decode().replace("\r\n", "\n").split("\n\n"):
        lines = [line for line in block.split("\n") if line and not line.startswith(":")]
        name = next((line[6:].strip() for line in lines if line.startswith("event:")), None)
        data = "\n".join(line[5:].strip() for line in lines if line.startswith("data:"))
        if data and data != "[DONE]":
            events.append((name, json.loads(data)))
    return events


# Bad requests and unknown paths, in each API's own shape.

def test_messages_bad_bodies_get_anthropic_400(scripted: Scripted) -> None:
    proxy, upstream = scripted()
    for body in (b"{not json", b"[1, 2]", b'"hello"'):
        response = httpx.post(proxy.url + "/v1/messages", content=body, headers={"content-type": "application/json"})
        assert_anthropic_error(response, 400, "invalid_request_error")
        assert response.headers["x-guardproxy-api"] == "messages"
    client = anthropic_client(proxy.url)
    for messages in (anthropic.NOT_GIVEN, "Hello."):
        with pytest.raises(anthropic.BadRequestError) as caught:
            client.messages.create(model="m", max_tokens=20, messages=messages)  # type: ignore[arg-type]
        error = assert_anthropic_error(caught.value.response, 400, "invalid_request_error")
        assert "messages" in error["message"]
    assert upstream.received == []


def test_unknown_messages_path_gets_anthropic_404(scripted: Scripted) -> None:
    proxy, upstream = scripted()
    with pytest.raises(anthropic.NotFoundError) as caught:
        anthropic_client(proxy.url).post("/v1/messages/whatever", body={"model": "m"}, cast_to=object)
    error = assert_anthropic_error(caught.value.response, 404, "not_found_error")
    assert "/v1/messages/whatever" in error["message"]
    assert upstream.received == []


def test_responses_input_of_wrong_type_gets_openai_400(scripted: Scripted) -> None:
    proxy, upstream = scripted()
    for wrong in (42, {"role": "user", "content": "hi"}, ["hi"]):
        with pytest.raises(openai.BadRequestError) as caught:
            proxy.client().responses.create(model="m", input=wrong)  # type: ignore[arg-type]
        error = caught.value.response.json()["error"]
        assert set(error) == {"message", "type", "param", "code"}
        assert (error["type"], error["param"]) == ("invalid_request_error", "input")
    assert upstream.received == []


# Upstreams and their keys.

def test_azure_paths_without_azure_upstream_get_openai_404(start_proxy: Callable[..., RunningProxy]) -> None:
    proxy = start_proxy(policy=POLICY)
    client = azure_client(proxy.url)
    for api, call in (("azure_chat", lambda: client.chat.completions.create(model="dep", messages=HELLO)),  # type: ignore[arg-type]
                      ("azure_embeddings", lambda: client.embeddings.create(model="dep", input="Hello."))):
        with pytest.raises(openai.NotFoundError) as caught:
            call()
        error = caught.value.response.json()["error"]
        assert set(error) == {"message", "type", "param", "code"}
        assert "--azure-upstream" in error["message"]
        assert caught.value.response.headers["x-guardproxy-api"] == api


def test_azure_key_goes_upstream_unless_the_operator_sets_one(scripted: Scripted) -> None:
    plain, upstream = scripted()
    operated, _ = scripted(environ={"AZ": "operator-key"}, azure_key_env="AZ")
    upstream.script(Answer(json=chat_answer({"content": "Hi."})), Answer(json=chat_answer({"content": "Hi."})))
    answer = azure_client(plain.url).chat.completions.create(model="dep", messages=HELLO)  # type: ignore[arg-type]
    assert answer.choices[0].message.content == "Hi."
    client = azure_client(operated.url, default_headers={"authorization": "Bearer client-bearer", "x-api-key": "x"})
    client.chat.completions.create(model="dep", messages=HELLO)  # type: ignore[arg-type]
    first, second = upstream.received
    assert (first.path, first.query) == ("/openai/deployments/dep/chat/completions", f"api-version={AZURE_VERSION}")
    assert first.headers["api-key"] == "azure-client-key"
    assert second.headers["api-key"] == "operator-key"
    assert "authorization" not in second.headers and "x-api-key" not in second.headers


def test_anthropic_upstream_and_operator_key(scripted_server: tuple[ScriptedUpstream, ThreadedServer],
                                             start_proxy: Callable[..., RunningProxy]) -> None:
    upstream, server = scripted_server  # --upstream stays the demo: only --anthropic-upstream reaches this one
    plain, operated = (start_proxy(policy=POLICY, anthropic_upstream=server.url + "/anthropic", **key)
                       for key in ({}, {"environ": {"AK": "operator-ant"}, "anthropic_key_env": "AK"}))
    upstream.script(Answer(events=messages_events(["Hi ", "there."])), Answer(json={"input_tokens": 3}))
    with anthropic_client(plain.url).messages.stream(model="m", max_tokens=20, messages=HELLO) as stream:  # type: ignore[arg-type]
        assert stream.get_final_text() == "Hi there."
    anthropic_client(operated.url, default_headers={"api-key": "client-azure"}).messages.count_tokens(
        model="m", messages=HELLO)  # type: ignore[arg-type]
    first, second = upstream.received
    assert (first.path, second.path) == ("/anthropic/v1/messages", "/anthropic/v1/messages/count_tokens")
    assert first.headers["authorization"] == "Bearer sk-ant-client"  # the anthropic 2.x SDK's own key header
    assert second.headers["x-api-key"] == "operator-ant"
    assert "authorization" not in second.headers and "api-key" not in second.headers


# Path spellings and routes.

@pytest.mark.parametrize(("spelled", "api", "canonical"), [
    ("/v1/messages/", "messages", "/v1/messages"), ("/v1//responses", "responses", "/v1/responses"),
    ("/V1/Responses", "responses", "/v1/responses"),
    ("/openai/deployments/d/Chat/Completions?api-version=x", "azure_chat", "/openai/deployments/d/chat/completions")])
def test_path_spellings_are_guarded(scripted: Scripted, spelled: str, api: str, canonical: str) -> None:
    proxy, upstream = scripted()
    body = next(request for name, _, request in APIS if name == api)
    blocked = httpx.post(proxy.url + spelled, json=body("Fly me to Zanzibar."))
    assert blocked.status_code == 400 and blocked.headers["x-guardproxy-verdict"] == "blocked"
    assert blocked.headers["x-guardproxy-api"] == api
    assert upstream.received == []
    assert httpx.post(proxy.url + spelled, json=body("Fly me home.")).status_code == 200
    assert [received.path for received in upstream.received] == [canonical]


@pytest.mark.parametrize(("pattern", "strict_apis"), [("messages", {"messages"}),
                                                      ("azure_*", {"azure_chat", "azure_completions",
                                                                   "azure_embeddings"})])
def test_routes_match_on_api(scripted: Scripted, pattern: str, strict_apis: set[str]) -> None:
    proxy, _ = scripted(policy=ROUTED.replace("API", pattern))
    for name, path, body in APIS:
        strict = name in strict_apis
        for word, chain in (("kumquat", "strict"), ("zanzibar", "default")):
            response = httpx.post(proxy.url + path, json=body(f"A {word} for me."))
            blocked = chain == ("strict" if strict else "default")
            assert response.status_code == (400 if blocked else 200), (name, word)
            if blocked:
                assert response.json()["error"]["guardrail"]["chain"] == chain, name


# The x-guardproxy-api header.

@pytest.mark.parametrize(("name", "path", "body"), APIS, ids=[api[0] for api in APIS])
def test_every_guarded_reply_names_its_api(scripted: Scripted, name: str, path: str, body: BodyOf) -> None:
    proxy, upstream = scripted()
    upstream.script(Answer(json={"ok": True}), Answer(json={"error": {"message": "busy"}}, status=503))
    replies = [httpx.post(proxy.url + path, json=body("Hello.")),  # passed
               httpx.post(proxy.url + path, json=body("Hello.")),  # the upstream's error
               httpx.post(proxy.url + path, json=body("Zanzibar!")),  # blocked by the input guard
               httpx.post(proxy.url + path, content=b"{oops", headers={"content-type": "application/json"})]
    assert [reply.status_code for reply in replies] == [200, 503, 400, 400]
    assert [reply.headers.get("x-guardproxy-api") for reply in replies] == [name] * 4


# Streams that break or end early.

def test_messages_stream_broken_upstream_ends_with_anthropic_error_event(
        breaking_server: tuple[list[dict[str, Any]], ThreadedServer], start_proxy: Callable[..., RunningProxy]) -> None:
    events, server = breaking_server
    events[:] = messages_events(["Hello there, ", "my good friend ", "and neighbour."])[:5]
    proxy = start_proxy(policy=POLICY, anthropic_upstream=server.url)
    seen: list[str] = []
    with pytest.raises(anthropic.APIError) as caught:
        for event in anthropic_client(proxy.url).messages.create(model="m", max_tokens=20, messages=HELLO,  # type: ignore[arg-type]
                                                                 stream=True):
            seen.append(event.type)
    assert seen[0] == "message_start" and "message_stop" not in seen
    assert not isinstance(caught.value, anthropic.InternalServerError)
    with httpx.stream("POST", proxy.url + "/v1/messages", json={**_messages("Hello."), "stream": True}) as response:
        assert response.status_code == 200
        assert response.headers["x-guardproxy-api"] == "messages"
        raw = response.read()
    name, error = sse_events(raw)[-1]
    assert name == "error" and error["type"] == "error"
    assert set(error["error"]) == {"type", "message"} and isinstance(error["error"]["message"], str)


def test_responses_stream_without_completed_keeps_released_text(scripted: Scripted) -> None:
    proxy, upstream = scripted()
    pieces = ["The ferry ", "leaves at ", "nine from ", "the north pier."]
    upstream.script(Answer(events=responses_events(pieces)[:-4]))  # ends after the last delta
    text, types = "", []
    with pytest.raises(openai.APIError) as caught:  # not a clean end that looks complete
        for event in proxy.client().responses.create(model="m", input="When?", stream=True):
            types.append(event.type)
            if event.type == "response.output_text.delta":
                text += event.delta
    assert text == "".join(pieces)  # released, checked, before the error
    assert caught.value.body["code"] == "upstream_incomplete"  # type: ignore[index]
    assert "response.completed" not in types and "response.incomplete" not in types


# Text without deltas, several content blocks.

def _without(events: list[Any], kinds: set[str]) -> list[Any]:
    kept = [event for event in events if event["type"] not in kinds]
    return [{**event, "sequence_number": number} for number, event in enumerate(kept)]


@pytest.mark.parametrize("dropped", [
    {"response.output_text.delta"},
    {"response.output_text.delta", "response.output_text.done", "response.content_part.added",
     "response.content_part.done", "response.output_item.added", "response.output_item.done"},
], ids=["text only in .done", "text only in response.completed"])
def test_responses_text_without_deltas_is_checked(scripted: Scripted, dropped: set[str]) -> None:
    proxy, upstream = scripted()
    upstream.script(Answer(events=_without(responses_events(STORY), dropped)))
    events = list(proxy.client().responses.create(model="m", input="Where?", stream=True))
    assert "zanzibar" not in "".join(event.model_dump_json() for event in events).lower()
    types, last = [event.type for event in events], events[-1]
    assert last.type == "response.incomplete" and types.count(last.type) == 1 and "response.completed" not in types
    assert last.response.incomplete_details is not None and last.response.incomplete_details.reason == "content_filter"


def two_blocks(text: list[str], tool_input: str) -> list[Any]:
    """An Anthropic stream with a text block (index 0), then a tool_use block (index 1)."""
    first = messages_events(text)
    second = messages_events(tool=("book_ferry", split(tool_input, 7)))
    moved = [{**event, "index": 1} if "index" in event else event for event in second[1:-2]]
    return [*first[:-2], *moved, *second[-2:]]


TOOL_INPUT = json.dumps({"destination": "the north pier", "note": "bring the Zanzibar tickets"})
CLEAN_INPUT = json.dumps({"destination": "the north pier", "note": "bring the tickets"})


@pytest.mark.parametrize("banned_in", ["text", "tool_use", "neither"])
def test_messages_stream_guards_both_blocks_and_stays_well_formed(scripted: Scripted, banned_in: str) -> None:
    """Parsed with anthropic's own types: every content_block_start has its content_block_stop,
    then one message_delta (a refusal when blocked) and message_stop."""
    proxy, upstream = scripted()
    text = STORY if banned_in == "text" else ["Booking your ", "ferry now, ", "one moment."]
    upstream.script(Answer(events=two_blocks(text, TOOL_INPUT if banned_in == "tool_use" else CLEAN_INPUT)))
    response = httpx.post(proxy.url + "/v1/messages", json={**_messages("Hello."), "stream": True})
    named = sse_events(response.content)
    assert [name for name, _ in named] == [data["type"] for _, data in named]
    parse = TypeAdapter(RawMessageStreamEvent).validate_python
    events = [parse(data) for name, data in named if name != "ping"]
    types = [event.type for event in events]
    assert types[0] == "message_start" and types[-2:] == ["message_delta", "message_stop"], types
    assert types.count("message_delta") == 1 and types.count("message_stop") == 1
    opened: list[int] = []
    released, arguments = "", ""
    for event in events[1:-2]:
        if event.type == "content_block_start":
            assert event.index not in opened
            opened.append(event.index)
        else:
            assert event.type in ("content_block_delta", "content_block_stop") and opened[-1:] == [event.index], types
        if event.type == "content_block_stop":
            opened.pop()
        elif event.type == "content_block_delta" and event.delta.type == "text_delta":
            released += event.delta.text
        elif event.type == "content_block_delta" and event.delta.type == "input_json_delta":
            arguments += event.delta.partial_json
    assert opened == [], f"blocks never stopped: {opened}"
    final = events[-2]
    assert final.type == "message_delta"
    assert b"zanzibar" not in response.content.lower()
    if banned_in == "neither":
        assert (released, json.loads(arguments), final.delta.stop_reason) == (
            "".join(text), json.loads(CLEAN_INPUT), "tool_use")
    else:
        assert final.delta.stop_reason == "refusal"
    if banned_in == "tool_use":
        assert released == "".join(text) and arguments == ""

def test_responses_stream_block_ends_with_one_incomplete(scripted: Scripted) -> None:
    proxy, upstream = scripted()
    upstream.script(Answer(events=responses_events(STORY)), Answer(events=responses_events(STORY)))
    response = httpx.post(proxy.url + "/v1/responses", json={"model": "m", "input": "Where?", "stream": True})
    parse = TypeAdapter(ResponseStreamEvent).validate_python
    events = [parse(data) for _, data in sse_events(response.content)]
    types, created, incomplete = [event.type for event in events], events[0], events[-1]
    assert created.type == "response.created" and incomplete.type == "response.incomplete", types
    assert types.count("response.incomplete") == 1 and "response.completed" not in types
    assert incomplete.response.id == created.response.id
    assert [event.sequence_number for event in events] == list(range(len(events)))
    assert b"zanzibar" not in response.content.lower()
    with proxy.client().responses.stream(model="m", input="Where?") as stream:
        helper_types = [event.type for event in stream]
    assert helper_types[-1] == "response.incomplete"
