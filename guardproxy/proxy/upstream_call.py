"""The upstream call of a proxied request: which upstream (OpenAI, Anthropic, Azure),
its URL for the canonical path, the headers it gets, the call itself (retried per
``retry.py``), and its answer noted (redirects refused).

``upstream_request`` returns the call to await rather than awaiting it: every
coroutine between a handler and aiohttp is crossed again at each suspension of the
call, which the pass-through pays for on every request.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable
from typing import TypeVar

import aiohttp

from guardproxy.proxy.context import RequestContext
from guardproxy.proxy.exchange import Exchange
from guardproxy.proxy.retry import RetryPolicy, with_retries
from guardproxy.proxy.runtime import Runtime
from guardproxy.proxy.upstream import KEY_HEADERS, redirect_of, request_headers, url_path

T = TypeVar("T")


def anthropic_path(path: str) -> bool:
    return path == "/v1/messages" or path.startswith("/v1/messages/")


def upstream_of(context: RequestContext) -> str:
    """openai, anthropic or azure: the guarded API's, else by the path's family."""
    if context.dialect is not None:
        return context.dialect.upstream
    path = context.report.path
    if path.startswith("/openai/deployments/"):
        return "azure"
    return "anthropic" if anthropic_path(path) else "openai"


def upstream_url(runtime: Runtime, ex: Exchange, upstream: str) -> str:
    base = runtime.upstream_bases[upstream]
    assert base is not None, "requests for an upstream that is not configured are refused before"
    # OpenAI's base_url ends in /v1; Anthropic's (the SDK's base_url form) and Azure's resource URL do not.
    path = url_path(ex.path if upstream in ("anthropic", "azure") else ex.path.removeprefix("/v1"))
    return base + path + (f"?{ex.query}" if ex.query else "")


def upstream_request(
    runtime: Runtime, ex: Exchange, context: RequestContext, body: bytes | AsyncIterator[bytes] | None,
    reads_body: bool, silent: bool = False,
) -> Awaitable[aiohttp.ClientResponse]:
    """The upstream call, to be awaited by the caller and its answer passed to
    ``answered`` (not a coroutine of its own: each coroutine between the handler and
    aiohttp is crossed again at every suspension of the call).

    ``body``: bytes, the client's body streamed through, or None for none. ``reads_body``:
    the proxy reads the answer, so it asks for it uncompressed and decodes it if it comes
    compressed anyway. A connect error or a 502/503 is retried (``retry.py``) when the
    body can be sent again (bytes or none). ``silent`` (``silent_stream``): the call has
    no read timeout of aiohttp's; the answer's headers must come within the upstream
    timeout, and its body is watched by ``relay.SilenceWatch``."""
    upstream_name = upstream_of(context)
    headers = request_headers(ex.headers, runtime.upstream_keys.get(upstream_name), KEY_HEADERS[upstream_name],
                              strip_client_keys=runtime.client_keys is not None)
    if reads_body:
        headers = [(n, v) for n, v in headers if n.lower() != "accept-encoding"] + [("accept-encoding", "identity")]
    trace_headers = context.upstream_sending(ex.method)
    if trace_headers:  # the proxy's span is the upstream call's parent: its traceparent replaces the client's
        headers = [(n, v) for n, v in headers if n.lower() not in trace_headers] + list(trace_headers.items())
    session = runtime.session
    assert session is not None, "the relay session is created in the app's lifespan"
    url = upstream_url(runtime, ex, upstream_name)
    retries = runtime.settings.upstream_retries if body is None or isinstance(body, bytes) else 0
    if silent:  # an unguarded stream: no read timeout re-armed at every read (relay.SilenceWatch keeps it)
        return within(session.request(ex.method, url, headers=headers, data=body, allow_redirects=False,
                                                auto_decompress=reads_body, timeout=runtime.stream_timeout),
                                runtime.settings.upstream_timeout)
    if retries == 0:
        return session.request(ex.method, url, headers=headers, data=body, allow_redirects=False,
                               auto_decompress=reads_body)

    async def send() -> aiohttp.ClientResponse:
        return await session.request(ex.method, url, headers=headers, data=body, allow_redirects=False,
                                     auto_decompress=reads_body)

    return with_retries(send, RetryPolicy(retries), context.report.upstream_retries)


def silent_stream(runtime: Runtime, streams: bool, reads_output: bool) -> bool:
    """Whether an answer is relayed unread as a stream and called without aiohttp's read
    timeout (``SilenceWatch`` instead): it asks for a stream, no output guard reads it, and
    it is not retried (a retried call keeps aiohttp's timeouts)."""
    return streams and not reads_output and runtime.settings.upstream_retries == 0


async def within(call: Awaitable[T], seconds: float) -> T:
    """``call``'s result, or the error aiohttp's read timeout raises if it takes ``seconds``."""
    try:
        async with asyncio.timeout(seconds):
            return await call
    except TimeoutError:
        raise aiohttp.ServerTimeoutError("Timeout on reading data from socket") from None


def answered(context: RequestContext, upstream: aiohttp.ClientResponse) -> aiohttp.ClientResponse:
    """The upstream's answer, noted; a redirect raises ``UpstreamRedirect``: it is neither
    followed (aiohttp's ``allow_redirects=False``) nor relayed."""
    context.upstream_answered(upstream.status)
    redirect = redirect_of(upstream)
    if redirect is not None:
        upstream.close()
        raise redirect
    return upstream
