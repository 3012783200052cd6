"""The physical limit for a Python pass-through on this stack: a raw ASGI app on
uvicorn (uvloop, httptools) relaying every request to the upstream with one
pooled aiohttp session, body and answer streamed, no guards, no parsing.

    python benchmarks/reference_proxy.py --port 9200 --upstream http://127.0.0.1:9100
"""

from __future__ import annotations

import argparse
from typing import Any

import aiohttp
import uvicorn

_DROP = {b"host", b"content-length", b"connection", b"transfer-encoding", b"keep-alive"}
_DROP_OUT = {"content-length", "connection", "transfer-encoding", "keep-alive", "date", "server"}


def make_httpx_app(upstream: str) -> Any:
    """The same relay on httpx's API over httpx-aiohttp's transport, to measure what that layer costs."""
    import httpx
    from httpx_aiohttp import AiohttpTransport

    client: httpx.AsyncClient | None = None

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        nonlocal client
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    limits = httpx.Limits(max_connections=1000, max_keepalive_connections=1000)
                    client = httpx.AsyncClient(transport=AiohttpTransport(limits=limits))
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    assert client is not None
                    await client.aclose()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        assert client is not None
        body = await _read(receive)
        headers = [(k.decode(), v.decode()) for k, v in scope["headers"] if k not in _DROP]
        url = upstream + scope["path"] + ("?" + scope["query_string"].decode() if scope["query_string"] else "")
        request = client.build_request(scope["method"], url, content=body, headers=headers)
        answer = await client.send(request, stream=True)
        try:
            out = [(k.lower().encode(), v.encode()) for k, v in answer.headers.multi_items()
                   if k.lower() not in _DROP_OUT]
            await send({"type": "http.response.start", "status": answer.status_code, "headers": out})
            async for piece in answer.aiter_raw():
                await send({"type": "http.response.body", "body": piece, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        finally:
            await answer.aclose()

    return app


async def _read(receive: Any) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


def make_app(upstream: str) -> Any:
    session: aiohttp.ClientSession | None = None

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        nonlocal session
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    connector = aiohttp.TCPConnector(limit=1000, limit_per_host=1000)
                    session = aiohttp.ClientSession(connector=connector, auto_decompress=False)
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    assert session is not None
                    await session.close()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        assert session is not None
        body = await _read(receive)
        headers = {k.decode(): v.decode() for k, v in scope["headers"] if k not in _DROP}
        url = upstream + scope["path"] + ("?" + scope["query_string"].decode() if scope["query_string"] else "")
        async with session.request(scope["method"], url, data=body, headers=headers) as answer:
            out = [(k.lower().encode(), v.encode()) for k, v in answer.headers.items() if k.lower() not in _DROP_OUT]
            await send({"type": "http.response.start", "status": answer.status, "headers": out})
            async for piece in answer.content.iter_any():
                await send({"type": "http.response.body", "body": piece, "more_body": True})
            await send({"type": "http.response.body", "body": b""})

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9200)
    parser.add_argument("--upstream", default="http://127.0.0.1:9100")
    parser.add_argument("--client", choices=["aiohttp", "httpx"], default="aiohttp",
                        help="aiohttp directly, or httpx's API over httpx-aiohttp's transport")
    args = parser.parse_args()
    factory = make_app if args.client == "aiohttp" else make_httpx_app
    uvicorn.run(factory(args.upstream.rstrip("/")), host=args.host, port=args.port, loop="uvloop",
                http="httptools", log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
