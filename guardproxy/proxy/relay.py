"""Moving upstream response bodies to the client as they arrive.

The generators pull from the upstream only when the client has taken the last
piece (back-pressure), and close the upstream response in every case: end,
block, error, or client disconnect (which cancels the generator).
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable

import aiohttp

from guardproxy.proxy.channel_guard import ChannelGuard
from guardproxy.proxy.context import RequestContext
from guardproxy.proxy.errors import error_body
from guardproxy.proxy.sse import SSEDecoder, SSEEvent, encode_data
from guardproxy.proxy.upstream import UPSTREAM_ERRORS, classify_failure

log = logging.getLogger("guardproxy.relay")

def close_upstream(response: aiohttp.ClientResponse) -> None:
    """Back to the pool when read to its end; otherwise the connection is closed,
    which is how the upstream learns that nobody is reading any more."""
    if response.content.at_eof():
        response.release()
    else:
        response.close()


def _midstream_error(exc: BaseException, context: RequestContext) -> bytes:
    context.upstream_failed(exc)
    failure = classify_failure(exc)
    log.warning("upstream stream broke after the response started: %s", type(exc).__name__)
    if context.dialect is not None:
        return context.dialect.stream_error(failure.status, failure.message, "upstream_error", failure.code)
    return encode_data(error_body(failure.message, "upstream_error", failure.code))


async def relay_raw(response: aiohttp.ClientResponse, sse: bool, context: RequestContext) -> AsyncIterator[bytes]:
    """Bytes exactly as received (content encoding untouched)."""
    try:
        async for chunk in response.content.iter_any():
            yield chunk
    except UPSTREAM_ERRORS as exc:
        if sse:
            yield _midstream_error(exc, context)
        else:
            context.upstream_failed(exc)
            log.warning("upstream body broke mid-way: %s", type(exc).__name__)
    finally:
        context.upstream_finished()
        close_upstream(response)


async def _timed_process(guard: ChannelGuard, event: SSEEvent, context: RequestContext) -> bytes:
    started = time.perf_counter()
    out = await guard.process(event)
    context.add_output_time(time.perf_counter() - started)
    return out


async def relay_guarded(
    response: aiohttp.ClientResponse, guard: ChannelGuard, on_done: Callable[[ChannelGuard], None],
    context: RequestContext,
) -> AsyncIterator[bytes]:
    """SSE events through the streamed output stage, whose time is noted as the proxy's overhead."""
    decoder = SSEDecoder()
    try:
        async for chunk in response.content.iter_any():
            for event in decoder.feed(chunk):
                out = await _timed_process(guard, event, context)
                if out:
                    yield out
                if guard.ended:
                    return
        context.upstream_finished()
        for event in decoder.close():
            out = await _timed_process(guard, event, context)
            if out:
                yield out
        started = time.perf_counter()
        tail = await guard.finish()
        context.add_output_time(time.perf_counter() - started)
        if tail:
            yield tail
    except UPSTREAM_ERRORS as exc:
        yield _midstream_error(exc, context)
    except ValueError as exc:  # an oversized event
        log.warning("upstream stream rejected: %s", exc)
        message = "The upstream stream could not be relayed."
        yield (context.dialect.stream_error(502, message, "upstream_error", "bad_stream") if context.dialect
               else encode_data(error_body(message, "upstream_error", "bad_stream")))
    finally:
        guard.cancel_checks()
        context.upstream_finished()
        close_upstream(response)
        on_done(guard)
