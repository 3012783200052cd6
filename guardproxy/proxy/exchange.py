"""One client request on a proxied route, in raw ASGI terms, and the replies to it.

The proxied routes are the hot path: every LLM call crosses them twice. Starlette's
``Request`` and ``StreamingResponse`` cost two to three times what the relay itself
does (a task group per response, header objects, routing), so these routes talk
ASGI directly. Errors and rare paths still answer with Starlette ``Response``
objects, which are ASGI apps themselves.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from typing import Any

from starlette.types import Receive, Scope, Send

from guardproxy.http.errors import ClientError
from guardproxy.telemetry.response_watch import ResponseWatch

RawHeaders = list[tuple[bytes, bytes]]


def too_large(limit: int) -> ClientError:
    return ClientError(413, f"The request body is larger than the proxy's limit of {limit} bytes.",
                       "request_too_large")


class Exchange:
    """The request's method, path, query and headers (decoded once, latin-1 as on the
    wire), and its body, read whole or streamed exactly once."""

    __slots__ = ("body_done", "headers", "method", "path", "query", "receive", "scope", "send")

    def __init__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.scope = scope
        self.receive = receive
        self.send = send
        self.method: str = scope["method"]
        self.path: str = scope["path"]
        self.query: str = scope["query_string"].decode("latin-1")
        self.headers: list[tuple[str, str]] = [(name.decode("latin-1"), value.decode("latin-1"))
                                               for name, value in scope["headers"]]
        self.body_done = False

    def header(self, name: str) -> str | None:
        """The first value of a header; ``name`` in lower case, as ASGI servers deliver them."""
        for key, value in self.headers:
            if key == name:
                return value
        return None

    def header_map(self) -> Mapping[str, str]:
        return dict(self.headers)

    def declared_too_large(self, limit: int) -> bool:
        declared = self.header("content-length")
        return declared is not None and declared.isdigit() and int(declared) > limit

    async def read_body(self, limit: int) -> bytes:
        """The whole body; 413 past ``limit`` bytes, declared or counted."""
        if self.declared_too_large(limit):
            raise too_large(limit)
        message = await self.receive()  # most bodies come in one message
        if message["type"] == "http.request" and not message.get("more_body", False):
            self.body_done = True
            body: bytes = message.get("body", b"")
            if len(body) > limit:
                raise too_large(limit)
            return body
        if message["type"] == "http.disconnect":
            self.body_done = True
            raise ClientDisconnected
        chunks: list[bytes] = [message.get("body", b"")]
        size = len(chunks[0])
        if size > limit:
            raise too_large(limit)
        async for chunk in self.stream():
            size += len(chunk)
            if size > limit:
                raise too_large(limit)
            chunks.append(chunk)
        return b"".join(chunks)

    async def stream(self) -> AsyncIterator[bytes]:
        while not self.body_done:
            message = await self.receive()
            if message["type"] == "http.disconnect":
                self.body_done = True
                raise ClientDisconnected
            self.body_done = not message.get("more_body", False)
            body = message.get("body", b"")
            if body:
                yield body


class ClientDisconnected(Exception):
    """The client went away before its request body arrived."""


class BodyReply:
    """A complete answer with its length: two ASGI messages."""

    __slots__ = ("body", "headers", "status_code")

    def __init__(self, status: int, headers: RawHeaders, body: bytes) -> None:
        self.status_code = status
        self.headers = headers
        self.body = body

    async def answer(self, receive: Receive, send: Send, watch: ResponseWatch | None) -> None:
        headers = [*self.headers, (b"content-length", str(len(self.body)).encode())]
        if watch is not None:
            watch.start(headers)
            watch.body(self.body)
        await send({"type": "http.response.start", "status": self.status_code, "headers": headers})
        await send({"type": "http.response.body", "body": self.body})


class StreamReply:
    """An answer relayed piece by piece as ``chunks`` yields it.

    With ``watch_disconnect`` (streams whose request body was read to its end), a
    client that leaves cancels the relay, whose ``finally`` closes the upstream
    response; without it, the relay ends when the upstream body does.
    """

    __slots__ = ("chunks", "headers", "status_code", "watch_disconnect")

    def __init__(self, status: int, headers: RawHeaders, chunks: AsyncIterator[bytes],
                 watch_disconnect: bool) -> None:
        self.status_code = status
        self.headers = headers
        self.chunks = chunks
        self.watch_disconnect = watch_disconnect

    async def answer(self, receive: Receive, send: Send, watch: ResponseWatch | None) -> None:
        """``watch`` sees what leaves (for metrics: first content, usage)."""
        watcher: asyncio.Task[None] | None = None
        left = asyncio.Event()
        if self.watch_disconnect:
            watcher = asyncio.create_task(_cancel_on_disconnect(receive, asyncio.current_task(), left))
        try:
            if watch is not None:
                watch.start(self.headers)
            await send({"type": "http.response.start", "status": self.status_code, "headers": self.headers})
            async for chunk in self.chunks:
                if watch is not None:
                    watch.body(chunk)
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if not left.is_set() or current is None:
                raise
            current.uncancel()  # our own cancellation: the client left, which is not an error
        finally:
            if watcher is not None:
                watcher.cancel()
            await _close(self.chunks)


async def _cancel_on_disconnect(receive: Receive, task: asyncio.Task[Any] | None, left: asyncio.Event) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            left.set()
            if task is not None:
                task.cancel()
            return


async def _close(chunks: AsyncIterator[bytes]) -> None:
    closer = getattr(chunks, "aclose", None)
    if closer is not None:
        with contextlib.suppress(Exception):
            await closer()
