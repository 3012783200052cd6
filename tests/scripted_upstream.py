"""An upstream that answers exactly what a test scripts, and records what it received.

The demo upstream (``guardproxy.demo``) plays a model; this one plays any answer
shape a real API can give (reasoning text, refusals, legacy function calls,
several choices), so the conformance tests can put text in every field. Every
scripted answer is validated against the OpenAI SDK's own types before it is
served, so a test cannot script an answer the real API would never give.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from openai.types import Completion
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

_TYPES = {"chat.completion": ChatCompletion, "chat.completion.chunk": ChatCompletionChunk,
          "text_completion": Completion}


@dataclass
class Received:
    method: str
    path: str  # as it arrived on the wire (raw, not decoded)
    body: bytes


@dataclass
class Answer:
    """A JSON body, or ``events`` (each a JSON object or the string ``[DONE]``) as a stream."""

    json: Any = None
    events: list[Any] | None = None
    status: int = 200


def validated(payload: Any) -> Any:
    """``payload`` after checking it against the SDK's type for its ``object``."""
    kind = _TYPES.get(payload.get("object")) if isinstance(payload, dict) else None
    if kind is not None:
        kind.model_validate(payload)
    return payload


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
                if event != "[DONE]":
                    validated(event)
        with self.lock:
            self.answers = list(answers)
            self.received.clear()

    def bodies(self) -> bytes:
        return b"\n".join(r.body for r in self.received)

    async def _endpoint(self, request: Request) -> Response:
        body = await request.body()
        with self.lock:
            self.received.append(Received(request.method, request.scope.get("raw_path", b"").decode("latin-1"), body))
            answer = self.answers.pop(0) if self.answers else Answer(json={"ok": True})
        if answer.events is None:
            return Response(json.dumps(answer.json).encode(), answer.status, media_type="application/json")

        def events() -> Iterator[bytes]:
            for event in answer.events or []:
                data = event if isinstance(event, str) else json.dumps(event)
                yield f"data: {data}\n\n".encode()

        return StreamingResponse(events(), answer.status, media_type="text/event-stream")

    def app(self) -> Starlette:
        methods = ["GET", "POST", "PUT", "DELETE", "PATCH"]
        return Starlette(routes=[Route("/{path:path}", self._endpoint, methods=methods)])


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
