"""An upstream that answers exactly what a test scripts, and records what it received.

The demo upstream (``guardproxy.demo``) plays a model; this one plays any answer
shape a real API can give (reasoning text, refusals, legacy function calls,
several choices, Responses items, Anthropic content blocks), so the conformance
tests can put text in every field. Every scripted answer and stream event is
validated against the OpenAI or Anthropic SDK's own types before it is served,
so a test cannot script an answer the real API would never give.

It also plays the faults a real upstream shows (``Answer``'s fault fields):
a stream that closes before its terminal event (leave the event out), an event
that is not JSON (``Raw``), a connection dropped or a silence mid-stream, a slow
first byte, a 502/503 before a good answer (script both), a redirect (``headers``
with a ``location``), and an upstream that refuses connections until it is
opened (``LateUpstream``).
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
import typing
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from anthropic.types import ErrorResponse, Message, RawMessageStreamEvent
from openai.types import Completion
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from openai.types.responses import Response as ResponsesResponse
from openai.types.responses import ResponseStreamEvent
from pydantic import BaseModel
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

_OBJECT_TYPES: dict[str, type[BaseModel]] = {
    "chat.completion": ChatCompletion,
    "chat.completion.chunk": ChatCompletionChunk,
    "text_completion": Completion,
    "response": ResponsesResponse,
}


def _classes_by_type(union: Any) -> dict[str, type[BaseModel]]:
    """Each member of a `type`-discriminated SDK union, by its `type` literal.

    Validating against the one matching class (not the whole union) keeps a
    failure's message about the event the test scripted, not ninety others.
    """
    members = typing.get_args(typing.get_args(union)[0])
    return {typing.get_args(cls.model_fields["type"].annotation)[0]: cls for cls in members}


_RESPONSES_EVENTS = _classes_by_type(ResponseStreamEvent)
_ANTHROPIC_EVENTS = _classes_by_type(RawMessageStreamEvent)


@dataclass
class Received:
    method: str
    path: str  # as it arrived on the wire (raw, not decoded)
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)  # lower-case names, repeats joined with ", "
    query: str = ""


@dataclass(frozen=True)
class Raw:
    """Bytes a stream sends as they are: a malformed event, a stray line."""

    data: bytes


@dataclass
class Answer:
    """A JSON body, or ``events`` (each a JSON object, the string ``[DONE]`` or ``Raw``) as a stream.

    Faults: ``first_byte_delay`` seconds before the status line; after ``break_after``
    events the connection is dropped; after ``stall_after`` events the upstream says
    nothing more until the proxy leaves.
    """

    json: Any = None
    events: list[Any] | None = None
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    first_byte_delay: float = 0.0
    break_after: int | None = None
    stall_after: int | None = None


def validated(payload: Any) -> Any:
    """``payload`` after checking it against the SDK type its ``object`` or ``type`` names.

    OpenAI objects carry ``object``; Responses events a ``type`` starting with
    ``response.`` (or ``error`` with a flat message); Anthropic messages and
    events a ``type`` (``message``, ``message_start``, ..., ``ping``, ``error``
    with an ``error`` object). Anything else (error bodies, ``{"ok": true}``)
    passes unchecked.
    """
    if not isinstance(payload, dict):
        return payload
    kind, object_type = payload.get("type"), payload.get("object")
    if object_type in _OBJECT_TYPES:
        _OBJECT_TYPES[object_type].model_validate(payload)
    elif kind == "message":
        Message.model_validate(payload)
    elif kind == "ping":
        assert payload == {"type": "ping"}, f"a ping event carries nothing else: {payload}"
    elif kind == "error" and isinstance(payload.get("error"), dict):
        ErrorResponse.model_validate(payload)
    elif isinstance(kind, str) and (kind.startswith("response.") or kind == "error"):
        assert kind in _RESPONSES_EVENTS, f"no Responses stream event is called {kind!r}"
        _RESPONSES_EVENTS[kind].model_validate(payload)
    elif kind in _ANTHROPIC_EVENTS:
        _ANTHROPIC_EVENTS[kind].model_validate(payload)
    return payload


def _sse(event: Any) -> bytes:
    """One SSE event; typed events (Responses, Anthropic) get their ``event:`` line first."""
    if isinstance(event, Raw):
        return event.data
    data = event if isinstance(event, str) else json.dumps(event)
    name = f"event: {event['type']}\n" if isinstance(event, dict) and "type" in event else ""
    return f"{name}data: {data}\n\n".encode()


@dataclass
class ScriptedUpstream:
    answers: list[Answer] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def script(self, *answers: Answer) -> None:
        for answer in answers:
            if answer.json is not None:
                validated(answer.json)
            for event in answer.events or []:
                if event != "[DONE]" and not isinstance(event, Raw):
                    validated(event)
        with self.lock:
            self.answers = list(answers)
            self.received.clear()

    def bodies(self) -> bytes:
        return b"\n".join(r.body for r in self.received)

    async def _endpoint(self, request: Request) -> Response:
        body = await request.body()
        headers: dict[str, str] = {}
        for name, value in request.headers.items():
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        raw_path = request.scope.get("raw_path", b"").decode("latin-1")
        with self.lock:
            self.received.append(Received(request.method, raw_path, body, headers,
                                          request.scope.get("query_string", b"").decode("latin-1")))
            answer = self.answers.pop(0) if self.answers else Answer(json={"ok": True})
        if answer.first_byte_delay:
            await asyncio.sleep(answer.first_byte_delay)
        if answer.events is None:
            body = b"" if answer.status in (204, 304) else json.dumps(answer.json).encode()
            return Response(body, answer.status, headers=answer.headers, media_type="application/json")
        return StreamingResponse(_stream(answer, request), answer.status, headers=answer.headers,
                                 media_type="text/event-stream")

    def app(self) -> Starlette:
        methods = ["GET", "POST", "PUT", "DELETE", "PATCH"]
        return Starlette(routes=[Route("/{path:path}", self._endpoint, methods=methods)])


async def _stream(answer: Answer, request: Request) -> AsyncIterator[bytes]:
    for number, event in enumerate(answer.events or []):
        if number == answer.break_after:
            raise ConnectionAbortedError("the scripted upstream drops the connection mid-stream")
        if number == answer.stall_after:
            while not await request.is_disconnected():  # silent until the proxy gives up and leaves
                await asyncio.sleep(0.05)
            return
        yield _sse(event)


class LateUpstream:
    """A scripted upstream on a port that refuses connections until ``open()``: its socket
    is bound at once, so its address is known, but it listens only once opened."""

    def __init__(self) -> None:
        self.upstream = ScriptedUpstream()
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._socket.getsockname()[1]}"
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    def open(self) -> None:
        """Listen and serve; returns once uvicorn accepts connections."""
        server = self._server = uvicorn.Server(uvicorn.Config(self.upstream.app(), log_level="warning"))
        self._thread = threading.Thread(target=server.run, kwargs={"sockets": [self._socket]}, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.01)
        assert server.started, "the late upstream did not start"

    def close(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(5)
        self._socket.close()


def chat_answer(*messages: dict[str, Any], finish: str = "stop") -> dict[str, Any]:
    return {"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "m",
            "choices": [{"index": i, "message": {"role": "assistant", **m}, "logprobs": None, "finish_reason": finish}
                        for i, m in enumerate(messages)],
            "usage": {"prompt_tokens": 3, "completion_tokens": 5, "total_tokens": 8}}


def chat_chunk(index: int = 0, finish: str | None = None, **delta: Any) -> dict[str, Any]:
    return {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "m",
            "choices": [{"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}]}


def split(text: str, size: int = 3) -> list[str]:
    return [text[i:i + size] for i in range(0, len(text), size)]


# The Responses API (OpenAI): a `response` object and its typed event stream.

def _output_text(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def responses_answer(text: str | None = None, call: tuple[str, str] | None = None) -> dict[str, Any]:
    """A completed ``response`` with one output item: a message saying ``text``, or,
    when ``call`` = (name, arguments JSON) is given, a function call."""
    if call is not None:
        item: dict[str, Any] = {"id": "fc_1", "type": "function_call", "status": "completed", "call_id": "call_1",
                                "name": call[0], "arguments": call[1]}
    else:
        item = {"id": "msg_1", "type": "message", "status": "completed", "role": "assistant",
                "content": [_output_text(text or "")]}
    return {"id": "resp_1", "object": "response", "created_at": 1, "status": "completed", "model": "m",
            "output": [item], "parallel_tool_calls": True, "tool_choice": "auto", "tools": [],
            "error": None, "incomplete_details": None, "instructions": None, "metadata": {},
            "temperature": 1.0, "top_p": 1.0,
            "usage": {"input_tokens": 3, "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
                      "output_tokens": 5, "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 8}}


def responses_events(pieces: Sequence[str] = (), call: tuple[str, Sequence[str]] | None = None) -> list[Any]:
    """The whole stream the real API sends for a message of ``pieces`` (one delta each),
    or for a function call when ``call`` = (name, argument pieces) is given;
    ``sequence_number`` counts from 0."""
    done = responses_answer("".join(pieces), (call[0], "".join(call[1])) if call else None)
    item = done["output"][0]
    started = {**done, "status": "in_progress", "output": [], "usage": None}
    events: list[dict[str, Any]] = [{"type": "response.created", "response": started},
                                    {"type": "response.in_progress", "response": started}]
    if call is not None:
        at = {"item_id": item["id"], "output_index": 0}
        events += [{"type": "response.output_item.added", "output_index": 0,
                    "item": {**item, "status": "in_progress", "arguments": ""}},
                   *({"type": "response.function_call_arguments.delta", **at, "delta": p} for p in call[1]),
                   {"type": "response.function_call_arguments.done", **at, "arguments": item["arguments"]}]
    else:
        at = {"item_id": item["id"], "output_index": 0, "content_index": 0}
        events += [{"type": "response.output_item.added", "output_index": 0,
                    "item": {**item, "status": "in_progress", "content": []}},
                   {"type": "response.content_part.added", **at, "part": _output_text("")},
                   *({"type": "response.output_text.delta", **at, "delta": p, "logprobs": []} for p in pieces),
                   {"type": "response.output_text.done", **at, "text": "".join(pieces), "logprobs": []},
                   {"type": "response.content_part.done", **at, "part": item["content"][0]}]
    events += [{"type": "response.output_item.done", "output_index": 0, "item": item},
               {"type": "response.completed", "response": done}]
    return [{**event, "sequence_number": number} for number, event in enumerate(events)]


# The Messages API (Anthropic): a `message` and its typed event stream.

def messages_answer(text: str | None = None, tool: tuple[str, dict[str, Any] | str] | None = None) -> dict[str, Any]:
    """An assistant ``message`` with one block: text, or, when ``tool`` = (name, input as
    a dict or JSON text) is given, a ``tool_use`` (stop_reason "tool_use")."""
    if tool is not None:
        tool_input = json.loads(tool[1]) if isinstance(tool[1], str) else tool[1]
        block: dict[str, Any] = {"type": "tool_use", "id": "toolu_1", "name": tool[0], "input": tool_input}
    else:
        block = {"type": "text", "text": text or ""}
    return {"id": "msg_1", "type": "message", "role": "assistant", "model": "m", "content": [block],
            "stop_reason": "tool_use" if tool else "end_turn", "stop_sequence": None,
            "usage": {"input_tokens": 3, "output_tokens": 5}}


def messages_events(pieces: Sequence[str] = (), tool: tuple[str, Sequence[str]] | None = None) -> list[Any]:
    """The whole stream the real API sends for a text of ``pieces`` (one text_delta each),
    or for a tool_use when ``tool`` = (name, partial_json pieces) is given."""
    done = messages_answer("".join(pieces), (tool[0], "".join(tool[1])) if tool else None)
    started = {**done, "content": [], "stop_reason": None, "usage": {"input_tokens": 3, "output_tokens": 1}}
    if tool is not None:
        opening = {**done["content"][0], "input": {}}
        deltas = [{"type": "input_json_delta", "partial_json": piece} for piece in tool[1]]
    else:
        opening = {"type": "text", "text": ""}
        deltas = [{"type": "text_delta", "text": piece} for piece in pieces]
    return [{"type": "message_start", "message": started},
            {"type": "content_block_start", "index": 0, "content_block": opening},
            {"type": "ping"},
            *({"type": "content_block_delta", "index": 0, "delta": delta} for delta in deltas),
            {"type": "content_block_stop", "index": 0},
            {"type": "message_delta", "delta": {"stop_reason": done["stop_reason"], "stop_sequence": None},
             "usage": {"output_tokens": 5}},
            {"type": "message_stop"}]
