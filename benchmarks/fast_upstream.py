"""A fixed-answer OpenAI-compatible upstream, fast enough that it is never what a
benchmark measures: a raw asyncio protocol on uvloop with httptools parsing.

- ``POST /v1/chat/completions`` and ``/v1/completions``: a fixed JSON answer with
  usage, or, when the body asks for ``"stream": true``, an SSE stream of
  ``--chunks`` content deltas (``--chunk-delay-ms`` apart), a final chunk and
  ``[DONE]``, sent with chunked transfer encoding so the connection is kept.
  ``--paced-events N`` paces only the first N events and sends the rest at once,
  for time-to-first-token runs that need not wait out the whole answer.
- ``GET /v1/models``: a one-model list. Anything else: an OpenAI-style 404.

    python benchmarks/fast_upstream.py --port 9100 [--chunks 20] [--chunk-delay-ms 0] [--paced-events 0]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

import httptools
import uvloop

REPLY = ("Paris is the capital of France. It sits on the Seine, has about two million inhabitants, "
         "and is known for the Louvre, the Eiffel Tower and its cafés. Anything else you would like to know?")


def _json_answer(model: str) -> bytes:
    return json.dumps({
        "id": "chatcmpl-bench", "object": "chat.completion", "created": int(time.time()), "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": REPLY}, "logprobs": None,
                     "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 20, "completion_tokens": 40, "total_tokens": 60},
    }, ensure_ascii=False).encode()


def _sse_events(model: str, chunks: int) -> list[bytes]:
    words = REPLY.split(" ")
    size = max(1, -(-len(words) // chunks))
    pieces = [" ".join(words[i:i + size]) + (" " if i + size < len(words) else "") for i in range(0, len(words), size)]
    base = {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": int(time.time()), "model": model}

    def event(delta: dict[str, str], finish: str | None) -> bytes:
        body = dict(base, choices=[{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}])
        return b"data: " + json.dumps(body, ensure_ascii=False).encode() + b"\n\n"

    events = [event({"role": "assistant", "content": ""}, None)]
    events += [event({"content": piece}, None) for piece in pieces]
    events.append(event({}, "stop"))
    events.append(b"data: [DONE]\n\n")
    return events


def _chunked(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


_MODELS = json.dumps({"object": "list", "data": [{"id": "gpt-4o-mini", "object": "model", "created": 0,
                                                  "owned_by": "bench"}]}).encode()
_NOT_FOUND = json.dumps({"error": {"message": "Unknown URL", "type": "invalid_request_error", "param": None,
                                   "code": "unknown_url"}}).encode()


class Answers:
    def __init__(self, chunks: int, delay: float, paced_events: int = 0) -> None:
        self.json = _json_answer("gpt-4o-mini")
        self.events = _sse_events("gpt-4o-mini", chunks)
        self.delay = delay
        self.paced_events = paced_events or len(self.events)


class UpstreamProtocol(asyncio.Protocol):
    def __init__(self, answers: Answers) -> None:
        self.answers = answers
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.url = b""
        self.body: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            assert self.transport is not None
            self.transport.close()

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        url, body = self.url, b"".join(self.body)
        self.url, self.body = b"", []
        path = url.split(b"?", 1)[0]
        if path in (b"/v1/chat/completions", b"/v1/completions"):
            if b'"stream":true' in body.replace(b" ", b""):
                self._stream()
            else:
                self._send(200, b"application/json", self.answers.json)
        elif path == b"/v1/models":
            self._send(200, b"application/json", _MODELS)
        else:
            self._send(404, b"application/json", _NOT_FOUND)

    def _send(self, status: int, content_type: bytes, body: bytes) -> None:
        assert self.transport is not None
        reason = b"OK" if status == 200 else b"Not Found"
        self.transport.write(b"HTTP/1.1 %d %s\r\ncontent-type: %s\r\ncontent-length: %d\r\n\r\n%s"
                             % (status, reason, content_type, len(body), body))

    def _stream(self) -> None:
        assert self.transport is not None
        head = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
        if not self.answers.delay:
            out = [head] + [_chunked(e) for e in self.answers.events] + [b"0\r\n\r\n"]
            self.transport.write(b"".join(out))
            return
        self.transport.write(head)
        asyncio.get_running_loop().create_task(self._paced())

    async def _paced(self) -> None:
        assert self.transport is not None
        for i, event in enumerate(self.answers.events):
            if 0 < i < self.answers.paced_events:
                await asyncio.sleep(self.answers.delay)
            if self.transport.is_closing():
                return
            self.transport.write(_chunked(event))
        self.transport.write(b"0\r\n\r\n")


async def serve(host: str, port: int, answers: Answers) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: UpstreamProtocol(answers), host, port, backlog=1024)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9100)
    parser.add_argument("--chunks", type=int, default=20, help="content deltas in a streamed answer")
    parser.add_argument("--chunk-delay-ms", type=float, default=0.0, help="pause between streamed events")
    parser.add_argument("--paced-events", type=int, default=0,
                        help="pause only before the first N events, send the rest at once (0: pace them all)")
    args = parser.parse_args()
    uvloop.run(serve(args.host, args.port, Answers(args.chunks, args.chunk_delay_ms / 1000, args.paced_events)))


if __name__ == "__main__":
    main()
