"""One client request on a proxied route, in raw ASGI terms.

The proxied routes are the hot path: every LLM call crosses them twice. Starlette's
``Request`` and ``StreamingResponse`` cost two to three times what the relay itself
does (a task group per response, header objects, routing), so these routes talk
ASGI directly. The body is read whole (guarded routes) or streamed through
(pass-through routes), and counted against the limit either way.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from starlette.types import Receive, Scope, Send

from guardproxy.proxy.errors import ClientError


def too_large(limit: int) -> ClientError:
    return ClientError(413, f"The request body is larger than the proxy's limit of {limit} bytes.",
                       "request_too_large")


class Exchange:
    """The request's method, path, query and headers (decoded once, latin-1 as on the
    wire), and its body, read whole or streamed exactly once."""

    __slots__ = ("body_done", "headers", "method", "path", "query", "receive", "scope", "send")

    def __init__(self, scope: Scope, receive: Receive, send: Send, path: str) -> None:
        """``path``: the canonical path (``http/paths.py``), which is what is routed and forwarded."""
        self.scope = scope
        self.receive = receive
        self.send = send
        self.method: str = scope["method"]
        self.path = path
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
        async for chunk in self.stream(limit - size):
            chunks.append(chunk)
        return b"".join(chunks)

    async def stream(self, limit: int) -> AsyncIterator[bytes]:
        """The body as it arrives; ``ClientError`` 413 once more than ``limit`` bytes came
        (a chunked upload declares no length, so it is counted here)."""
        size = 0
        while not self.body_done:
            message = await self.receive()
            if message["type"] == "http.disconnect":
                self.body_done = True
                raise ClientDisconnected
            self.body_done = not message.get("more_body", False)
            body = message.get("body", b"")
            size += len(body)
            if size > limit:
                raise too_large(limit)
            if body:
                yield body


class ClientDisconnected(Exception):
    """The client went away before its request body arrived."""
