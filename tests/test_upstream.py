"""Upstream helpers: header rules, failure mapping, and the client guards use."""

from __future__ import annotations

import asyncio

import aiohttp
import httpx
import pytest

from guardproxy.guards import UpstreamCallError
from guardproxy.proxy.upstream import (
    GuardUpstreamClient,
    classify_failure,
    create_client,
    request_headers,
    response_headers,
)
from tests.servers import ThreadedServer


def test_request_headers_drop_hop_by_hop_and_own_and_replace_key() -> None:
    incoming = [("Host", "proxy"), ("Connection", "close, X-Secret-Hop"), ("X-Secret-Hop", "1"),
                ("Authorization", "Bearer client"), ("X-GuardProxy-Verdict", "x"), ("Content-Length", "3"),
                ("X-Trace", "t"), ("Transfer-Encoding", "chunked")]
    assert request_headers(incoming, None) == [("Authorization", "Bearer client"), ("X-Trace", "t")]
    assert request_headers(incoming, "sk-op") == [("X-Trace", "t"), ("authorization", "Bearer sk-op")]


def test_response_headers_drop_encoding_only_when_decoded() -> None:
    incoming = [(b"Content-Encoding", b"gzip"), (b"content-length", b"10"), (b"Retry-After", b"7"),
                (b"server", b"u"), (b"X-GuardProxy-Verdict", b"spoofed")]
    assert response_headers(incoming, decoded=False) == [(b"content-encoding", b"gzip"), (b"retry-after", b"7")]
    assert response_headers(incoming, decoded=True) == [(b"retry-after", b"7")]


def test_response_headers_drop_those_named_in_connection() -> None:
    incoming = [(b"Connection", b"close, X-Hop"), (b"x-hop", b"1"), (b"x-request-id", b"r")]
    assert response_headers(incoming, decoded=False) == [(b"x-request-id", b"r")]


def test_failure_mapping_reads_the_aiohttp_cause() -> None:
    refused = aiohttp.ClientConnectorError.__new__(aiohttp.ClientConnectorError)
    wrapped = httpx.ConnectTimeout("mapped wrongly by the transport")
    wrapped.__cause__ = refused
    assert classify_failure(wrapped).status == 502  # refused, not a timeout
    timed_out = httpx.ReadTimeout("slow")
    timed_out.__cause__ = TimeoutError()
    assert classify_failure(timed_out).status == 504
    assert classify_failure(httpx.RemoteProtocolError("bad")).code == "upstream_error"


async def test_guard_upstream_client_on_the_event_loop(upstream_server: ThreadedServer) -> None:
    client = create_client(2, 5, 10)
    try:
        guard_client = GuardUpstreamClient(client, upstream_server.url + "/v1", "Bearer sk-guard")
        answer = await guard_client.post_json("/embeddings", {"model": "demo", "input": "x"}, 5)
        assert answer["object"] == "list" and len(answer["data"][0]["embedding"]) == 16
        with pytest.raises(UpstreamCallError, match="answered 404"):
            await guard_client.post_json("/nothing-here", {}, 5)
        down = GuardUpstreamClient(client, "http://127.0.0.1:9/v1", None)
        with pytest.raises(UpstreamCallError, match="upstream_unreachable"):
            await down.post_json("/moderations", {"input": "x"}, 2)
    finally:
        await client.aclose()


async def test_guard_upstream_client_gives_up_after_its_timeout() -> None:
    """An upstream that accepts the call and never answers is an ``UpstreamCallError``, not a hang."""
    answered = asyncio.Event()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await answered.wait()
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = create_client(2, 30, 4)
    try:
        guard_client = GuardUpstreamClient(client, f"http://127.0.0.1:{port}/v1", None)
        with pytest.raises(UpstreamCallError, match=r"within 0\.2 s"):
            await guard_client.post_json("/moderations", {"input": "x"}, 0.2)
    finally:
        answered.set()
        await client.aclose()
        server.close()
        await server.wait_closed()
