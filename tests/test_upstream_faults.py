"""Upstream faults end to end, through the openai and anthropic SDKs against the proxy on
loopback, for chat, Responses and Messages streams, with output guards (each event read,
``relay_guarded``) and without (bytes relayed unread, ``RawRelay``):

- a stream that closes before its end event, breaks, or stalls past ``--upstream-timeout``
  ends with an error event the SDK raises, never a clean end, and the fault is counted
  in ``guardproxy_upstream_errors_total`` (incomplete, error, timeout);
- an event that is not JSON is never relayed on a guarded stream (bad_stream); the
  unguarded relay does not parse events and passes it as it came;
- the upstream's own error event is relayed once, with nothing added and nothing counted;
- a slow first byte is waited for (the connect timeout does not bound it);
- bodies that cannot carry an error event are cut off, and a whole JSON body cut short is
  a 502, not an empty 200;
- a redirect is neither followed nor relayed: 502 ``upstream_redirect``, the operator's key
  never reaches the other host, not from the relay nor from a guard calling the upstream.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import anthropic
import httpx
import openai
import pytest

from guardproxy.guards import UpstreamCallError
from guardproxy.proxy.sse import SSEDecoder
from guardproxy.proxy.upstream import GuardUpstreamClient, create_client
from tests.conftest import RunningProxy
from tests.scripted_upstream import (
    Answer,
    Raw,
    ScriptedUpstream,
    chat_answer,
    chat_chunk,
    messages_events,
    responses_events,
)
from tests.servers import ThreadedServer
from tests.test_metrics import scrape

GUARDED = """
version: 1
name: guarded
stream: {hold_back_chars: 16}
chains:
  default:
    output: [{name: banned, guard: keywords, action: block, terms: [zanzibar], label: banned}]
"""
PLAIN = "version: 1\nname: plain\nunknown_paths: pass\nchains: {default: {}}\n"
POLICIES = {"guarded": GUARDED, "unguarded": PLAIN}
PIECES = ["The ferry ", "leaves at ", "nine from ", "the north pier."]
ERRORS = "guardproxy_upstream_errors_total"
Start = Callable[..., tuple[RunningProxy, ScriptedUpstream]]


@pytest.fixture
def faulty(scripted_server: tuple[ScriptedUpstream, ThreadedServer], start_proxy: Callable[..., RunningProxy]
           ) -> Start:
    """A proxy with ``policy`` (and any settings) in front of the scripted upstream."""
    upstream, server = scripted_server

    def start(policy: str = GUARDED, **settings: Any) -> tuple[RunningProxy, ScriptedUpstream]:
        upstream.script()
        return start_proxy(policy=policy, upstream=server.url + "/v1", **settings), upstream

    return start


@dataclass(frozen=True)
class StreamAPI:
    """One streaming API: its whole stream, where its text starts, and how an SDK reads it."""

    name: str
    path: str
    body: dict[str, Any]
    events: Callable[[list[str]], list[Any]]
    first_text: int  # index of the first text event
    malformed: bytes

    def read(self, proxy: RunningProxy) -> tuple[str, Exception | None]:
        """The text the SDK delivered, and the error it raised (None: the stream ended cleanly)."""
        text: list[str] = []
        try:
            for piece in self._pieces(proxy):
                text.append(piece)
        except (openai.APIError, anthropic.APIError) as exc:
            return "".join(text), exc
        return "".join(text), None

    def _pieces(self, proxy: RunningProxy) -> Iterator[str]:
        if self.name == "chat":
            for chunk in proxy.client().chat.completions.create(**self.body):
                yield from (choice.delta.content or "" for choice in chunk.choices)
        elif self.name == "responses":
            for event in proxy.client().responses.create(**self.body):
                if event.type == "response.output_text.delta":
                    yield event.delta
        else:
            client = anthropic.Anthropic(base_url=proxy.url, api_key="sk-ant-client", max_retries=0, timeout=20)
            for event in client.messages.create(**self.body):
                if event.type == "content_block_delta" and event.delta.type == "text_delta":
                    yield event.delta.text


USER = [{"role": "user", "content": "When does the ferry leave?"}]
CHAT = StreamAPI("chat", "/v1/chat/completions", {"model": "m", "messages": USER, "stream": True},
                 lambda pieces: [*(chat_chunk(content=p) for p in pieces), chat_chunk(finish="stop"), "[DONE]"],
                 0, b"data: {not json\n\n")
RESPONSES = StreamAPI("responses", "/v1/responses", {"model": "m", "input": "When?", "stream": True},
                      lambda pieces: responses_events(pieces), 4,
                      b"event: response.output_text.delta\ndata: {not json\n\n")
MESSAGES = StreamAPI("messages", "/v1/messages", {"model": "m", "max_tokens": 50, "messages": USER, "stream": True},
                     lambda pieces: messages_events(pieces), 3, b"event: content_block_delta\ndata: [1, 2]\n\n")
APIS = [pytest.param(api, id=api.name) for api in (CHAT, RESPONSES, MESSAGES)]
GUARDING = ["guarded", "unguarded"]


def error_of(exc: Exception | None) -> tuple[str, str]:
    """(code or Anthropic error type, message) of the error event an SDK raised."""
    assert exc is not None, "the stream ended cleanly: the fault was invisible to the client"
    body = exc.body if isinstance(exc, (openai.APIError, anthropic.APIError)) else None
    assert isinstance(body, dict), f"not an error event: {exc!r}"
    if isinstance(exc, anthropic.APIError):
        return body["error"]["type"], body["error"]["message"]
    return body["code"], body["message"]


def counted(proxy: RunningProxy) -> dict[str, float]:
    """guardproxy_upstream_errors_total by kind, only the kinds that are not zero."""
    samples = scrape(proxy.url)
    return {labels["kind"]: value for name, labels, value in samples if name == ERRORS and value}


# Streams that end wrong: each an error event the SDK raises, each counted.

@pytest.mark.parametrize("guarding", GUARDING)
@pytest.mark.parametrize("api", APIS)
def test_stream_closed_before_its_end_event_ends_with_an_error(faulty: Start, api: StreamAPI, guarding: str) -> None:
    proxy, upstream = faulty(POLICIES[guarding])
    upstream.script(Answer(events=api.events(PIECES)[:-1]))  # all but [DONE], response.completed, message_stop
    text, exc = api.read(proxy)
    assert text == "".join(PIECES)  # everything that came, checked, then the error
    code, message = error_of(exc)
    assert code == ("api_error" if api is MESSAGES else "upstream_incomplete")
    assert message == "The upstream's stream ended before its last event."
    assert counted(proxy) == {"incomplete": 1}


@pytest.mark.parametrize("guarding", GUARDING)
@pytest.mark.parametrize("api", APIS)
def test_stream_dropped_mid_way_ends_with_an_error(faulty: Start, api: StreamAPI, guarding: str) -> None:
    proxy, upstream = faulty(POLICIES[guarding])
    upstream.script(Answer(events=api.events(PIECES), break_after=api.first_text + 2))
    text, exc = api.read(proxy)
    assert text == "".join(PIECES[:2])
    code, message = error_of(exc)
    assert code == ("api_error" if api is MESSAGES else "upstream_error")
    assert message == "The upstream API connection failed."
    assert counted(proxy) == {"error": 1}


@pytest.mark.parametrize("guarding", GUARDING)
def test_a_stream_cut_inside_an_event_ends_with_an_error_event_of_its_own(faulty: Start, guarding: str) -> None:
    """The cut event cannot swallow the error event: it starts after a blank line (unguarded,
    where the cut bytes have gone out) or the cut event is never sent (guarded)."""
    proxy, upstream = faulty(POLICIES[guarding])
    cut = Raw(b'data: {"id": "chatcmpl-cut", "object": "chat.compl')
    upstream.script(Answer(events=[*CHAT.events(PIECES)[:2], cut, "[DONE]"], break_after=3))
    raw = httpx.post(proxy.url + CHAT.path, json=CHAT.body, timeout=20).content
    decoder = SSEDecoder()
    last = [*decoder.feed(raw), *decoder.close()][-1]
    assert json.loads(last.data or "")["error"]["code"] == "upstream_error"
    assert (cut.data in raw) == (guarding == "unguarded")
    if guarding == "guarded":
        upstream.script(Answer(events=[*CHAT.events(PIECES)[:2], cut, "[DONE]"], break_after=3))
        text, exc = CHAT.read(proxy)
        assert text == "".join(PIECES[:2]) and error_of(exc)[0] == "upstream_error"


@pytest.mark.timeout(60)
@pytest.mark.parametrize("guarding", GUARDING)
@pytest.mark.parametrize("api", APIS)
def test_stream_stalled_past_the_upstream_timeout_ends_with_an_error(faulty: Start, api: StreamAPI,
                                                                     guarding: str) -> None:
    proxy, upstream = faulty(POLICIES[guarding], upstream_timeout=0.5)
    upstream.script(Answer(events=api.events(PIECES), stall_after=api.first_text + 2))
    text, exc = api.read(proxy)
    assert text == "".join(PIECES[:2])
    code, message = error_of(exc)
    assert code == ("timeout_error" if api is MESSAGES else "upstream_timeout")
    assert message == "The upstream API did not answer in time."
    assert counted(proxy) == {"timeout": 1}


@pytest.mark.parametrize("api", APIS)
def test_malformed_event_on_a_guarded_stream_is_withheld_and_ends_it(faulty: Start, api: StreamAPI) -> None:
    proxy, upstream = faulty(GUARDED)
    events = api.events(PIECES)
    at = api.first_text + 2
    upstream.script(Answer(events=[*events[:at], Raw(api.malformed), *events[at:]]))
    text, exc = api.read(proxy)
    assert text == "".join(PIECES[:2])  # nothing after the event the guards could not read
    code, message = error_of(exc)
    assert code == ("api_error" if api is MESSAGES else "bad_stream")
    assert message == "The upstream sent a stream event the proxy could not read."
    assert counted(proxy) == {"bad_stream": 1}
    upstream.script(Answer(events=[*events[:at], Raw(api.malformed), *events[at:]]))
    raw = httpx.post(proxy.url + api.path, json=api.body, timeout=20).content
    assert api.malformed.split(b"data:")[1].strip() not in raw


def test_malformed_event_on_an_unguarded_stream_is_relayed_as_it_came(faulty: Start) -> None:
    """The unguarded relay never parses events: the SDK meets the bad event itself."""
    proxy, upstream = faulty(PLAIN)
    events = CHAT.events(PIECES)
    upstream.script(Answer(events=[*events[:2], Raw(CHAT.malformed), *events[2:]]))
    raw = httpx.post(proxy.url + CHAT.path, json=CHAT.body, timeout=20).content
    assert CHAT.malformed in raw and raw.endswith(b"data: [DONE]\n\n")
    assert counted(proxy) == {}


@pytest.mark.parametrize("guarding", GUARDING)
@pytest.mark.parametrize("api", APIS)
def test_the_upstreams_own_error_event_is_relayed_once_and_not_counted(faulty: Start, api: StreamAPI,
                                                                      guarding: str) -> None:
    proxy, upstream = faulty(POLICIES[guarding])
    at = api.first_text + 2
    own: dict[str, Any] = {
        "chat": {"error": {"message": "Overloaded.", "type": "server_error", "param": None, "code": None}},
        "responses": {"type": "error", "code": "server_error", "message": "Overloaded.", "param": None,
                      "sequence_number": at},
        "messages": {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded."}},
    }[api.name]
    upstream.script(Answer(events=[*api.events(PIECES)[:at], own]))
    raw = httpx.post(proxy.url + api.path, json=api.body, timeout=20).content
    assert raw.count(b"Overloaded.") == 1 and b"upstream_error" not in raw and b"[DONE]" not in raw
    upstream.script(Answer(events=[*api.events(PIECES)[:at], own]))
    text, exc = api.read(proxy)
    assert text == "".join(PIECES[:2])
    if api is not RESPONSES:  # the openai SDK yields a Responses `error` event as an event, not an exception
        assert "Overloaded." in str(exc)
    assert counted(proxy) == {}


@pytest.mark.parametrize("guarding", GUARDING)
@pytest.mark.parametrize("api", APIS)
def test_a_slow_first_byte_is_waited_for(faulty: Start, api: StreamAPI, guarding: str) -> None:
    """Silence before the answer starts is bounded by --upstream-timeout, not by the connect timeout."""
    proxy, upstream = faulty(POLICIES[guarding], connect_timeout=0.1, upstream_timeout=10)
    upstream.script(Answer(events=api.events(PIECES), first_byte_delay=0.5))
    assert api.read(proxy) == ("".join(PIECES), None)
    assert counted(proxy) == {}


@pytest.mark.parametrize("guarding", GUARDING)
@pytest.mark.parametrize("api", APIS)
def test_an_answer_that_never_starts_is_a_504(faulty: Start, api: StreamAPI, guarding: str) -> None:
    """Unguarded streams are called without aiohttp's read timeout (relay.SilenceWatch keeps
    it for the body): the wait for the answer's status line is bounded all the same."""
    proxy, upstream = faulty(POLICIES[guarding], upstream_timeout=0.5)
    upstream.script(Answer(events=api.events(PIECES), first_byte_delay=3.0))
    text, exc = api.read(proxy)  # had the delay run its course, the answer would be a 200
    assert text == "" and isinstance(exc, (openai.APIStatusError, anthropic.APIStatusError))
    assert exc.status_code == 504
    assert counted(proxy) == {"timeout": 1}


# Bodies that cannot carry an error event.

def test_a_compressed_stream_that_breaks_is_cut_off(faulty: Start) -> None:
    """Compressed bytes are relayed undecoded: an event appended to them would be garbage,
    so the connection is dropped and the client's HTTP library reports an incomplete body."""
    proxy, upstream = faulty(PLAIN)
    upstream.script(Answer(events=CHAT.events(PIECES), break_after=2, headers={"content-encoding": "gzip"}))
    received = b""
    with pytest.raises(httpx.RemoteProtocolError), \
            httpx.stream("POST", proxy.url + CHAT.path, json=CHAT.body, timeout=20) as response:
        for chunk in response.iter_raw():
            received += chunk
    assert b"upstream_error" not in received
    assert counted(proxy) == {"error": 1}


def test_a_streamed_body_that_breaks_is_cut_off(faulty: Start) -> None:
    proxy, upstream = faulty(PLAIN)
    upstream.script(Answer(events=[{"line": 1}, {"line": 2}, {"line": 3}], break_after=2,
                           headers={"content-type": "application/x-ndjson"}))
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.get(proxy.url + "/v1/files/file-1/content", timeout=20)
    assert counted(proxy) == {"error": 1}


@pytest.mark.parametrize("guarding", GUARDING)
def test_a_json_answer_cut_short_is_a_502_not_an_empty_200(faulty: Start, guarding: str) -> None:
    proxy, upstream = faulty(POLICIES[guarding])
    upstream.script(Answer(json=chat_answer({"content": "The ferry leaves at nine."}),
                           headers={"content-length": "4000"}))
    with pytest.raises(openai.APIStatusError) as caught:
        proxy.client().chat.completions.create(model="m", messages=USER)  # type: ignore[arg-type]
    assert caught.value.status_code == 502
    assert caught.value.body["code"] == "upstream_error"  # type: ignore[index]
    assert counted(proxy) == {"error": 1}


# Redirects: neither followed nor relayed.

@pytest.fixture(scope="module")
def elsewhere() -> Iterator[tuple[ScriptedUpstream, ThreadedServer]]:
    """A second host, the target of the redirects: it must never be called."""
    upstream = ScriptedUpstream()
    with ThreadedServer(upstream.app()) as server:
        yield upstream, server


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_is_a_502_and_nothing_reaches_the_other_host(
        faulty: Start, elsewhere: tuple[ScriptedUpstream, ThreadedServer], status: int) -> None:
    target, server = elsewhere
    target.script()
    proxy, upstream = faulty(GUARDED, upstream_key_env="UPSTREAM_KEY", anthropic_key_env="ANTHROPIC_KEY",
                             environ={"UPSTREAM_KEY": "sk-operator", "ANTHROPIC_KEY": "sk-ant-operator"})
    location = {"location": server.url + "/v1/chat/completions?token=signed"}
    upstream.script(Answer(json={"moved": True}, status=status, headers=location),
                    Answer(json={"moved": True}, status=status, headers=location),
                    Answer(json={"moved": True}, status=status, headers=location))
    client = proxy.client(api_key="sk-client")  # both SDKs follow a redirect they receive, with their key
    with pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(model="m", messages=USER)  # type: ignore[arg-type]
    assert caught.value.status_code == 502
    assert caught.value.body["code"] == "upstream_redirect"  # type: ignore[index]
    assert "location" not in caught.value.response.headers
    with pytest.raises(openai.APIStatusError):
        client.models.list()  # a GET relayed unguarded: the same
    with pytest.raises(anthropic.APIStatusError) as refused:
        anthropic.Anthropic(base_url=proxy.url, api_key="sk-ant-client", max_retries=0).messages.create(
            model="m", max_tokens=5, messages=USER)  # type: ignore[arg-type]
    assert refused.value.status_code == 502 and refused.value.body["error"]["type"] == "api_error"  # type: ignore[index]
    assert target.received == []
    assert [r.headers["authorization"] for r in upstream.received[:2]] == ["Bearer sk-operator"] * 2
    assert upstream.received[2].headers["x-api-key"] == "sk-ant-operator"
    assert counted(proxy) == {"redirect": 3}


def test_a_not_modified_answer_without_location_is_relayed(faulty: Start) -> None:
    proxy, upstream = faulty(PLAIN)
    upstream.script(Answer(json=None, status=304))
    response = httpx.get(proxy.url + "/v1/files/file-1", headers={"if-none-match": '"v1"'}, timeout=20)
    assert response.status_code == 304
    assert counted(proxy) == {}


async def test_the_guards_upstream_client_follows_no_redirect(
        scripted_server: tuple[ScriptedUpstream, ThreadedServer],
        elsewhere: tuple[ScriptedUpstream, ThreadedServer]) -> None:
    upstream, server = scripted_server
    target, target_server = elsewhere
    target.script()
    upstream.script(Answer(json={}, status=307, headers={"location": target_server.url + "/v1/moderations"}))
    client = create_client(2, 5, 4)
    try:
        guard_client = GuardUpstreamClient(client, server.url + "/v1", "Bearer sk-operator")
        with pytest.raises(UpstreamCallError, match="answered 307"):
            await guard_client.post_json("/moderations", {"input": "x"}, 5)
    finally:
        await client.aclose()
    assert len(upstream.received) == 1 and target.received == []


def test_a_guard_calling_a_redirecting_upstream_sends_nothing_elsewhere(
        faulty: Start, elsewhere: tuple[ScriptedUpstream, ThreadedServer]) -> None:
    target, server = elsewhere
    target.script()
    policy = ("version: 1\nname: moderated\nchains:\n  default:\n    input:\n"
              "      - {name: tox, guard: toxicity, detector: moderation, action: block, on_error: block}\n")
    proxy, upstream = faulty(policy, upstream_key_env="UPSTREAM_KEY", environ={"UPSTREAM_KEY": "sk-operator"})
    upstream.script(Answer(json={}, status=307, headers={"location": server.url + "/v1/moderations"}))
    with pytest.raises(openai.BadRequestError):  # the guard failed, and on_error blocks
        proxy.client().chat.completions.create(model="m", messages=USER)  # type: ignore[arg-type]
    assert [r.path for r in upstream.received] == ["/v1/moderations"]
    assert upstream.received[0].headers["authorization"] == "Bearer sk-operator"
    assert target.received == []
