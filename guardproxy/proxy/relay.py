"""Moving upstream response bodies to the client as they arrive, and ending them
so that a broken upstream never looks like a finished answer.

The generators pull from the upstream only when the client has taken the last
piece (back-pressure), and close the upstream response in every case: end,
block, error, or client disconnect (which cancels the generator).

An SSE stream ends with its API's end event (``stream_end.py``), or, when the
upstream fails after the answer has started, with an error event in the API's
own shape (``Dialect.stream_error``), which the SDKs raise. Each such fault is the
request's ``upstream_error`` (``guardproxy_upstream_errors_total{kind}``):

- ``error``: the connection broke; ``timeout``: silent for ``--upstream-timeout``;
- ``incomplete``: closed cleanly before the end event (guarded streams see every
  event; the unguarded relay reads the end from the last bytes, ``StreamEnd``);
- ``bad_stream``: on a guarded stream, an event whose data is not a JSON object,
  or one past the size limit. Such an event is never relayed: its text could not
  be checked. The unguarded relay does not parse events and relays it as it came.

A body that cannot carry an error event (not SSE, or content-encoded, where the
proxy relays compressed bytes it never decodes) is cut off instead (``BodyCutOff``):
the server drops the connection, which HTTP clients report as an incomplete body.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterator

import aiohttp

from guardproxy.proxy.channel_guard import ChannelGuard, MalformedEvent
from guardproxy.proxy.context import RequestContext
from guardproxy.proxy.errors import error_body
from guardproxy.proxy.sse import SSEDecoder, SSEEvent, encode_data
from guardproxy.proxy.stream_end import AFTER_CUT, StreamEnd
from guardproxy.proxy.upstream import UPSTREAM_ERRORS, UpstreamFailure, classify_failure

log = logging.getLogger("guardproxy.relay")

INCOMPLETE = UpstreamFailure(502, "upstream_incomplete", "The upstream's stream ended before its last event.",
                             "incomplete")


class BodyCutOff(Exception):
    """Raised out of a relay whose body broke after it started and cannot carry an error
    event: the server then drops the connection, the one end an HTTP client cannot
    mistake for a complete body."""


def close_upstream(response: aiohttp.ClientResponse) -> None:
    """Back to the pool when read to its end; otherwise the connection is closed,
    which is how the upstream learns that nobody is reading any more."""
    if response.content.at_eof():
        response.release()
    else:
        response.close()


def note_fault(context: RequestContext, kind: str) -> None:
    """The request's upstream fault, for metrics, the access log and the upstream span."""
    context.report.upstream_error = kind
    context.upstream_finished()


def fault_event(context: RequestContext, failure: UpstreamFailure) -> bytes:
    """The error event that ends a broken stream, in the API's shape."""
    if context.dialect is not None:
        return context.dialect.stream_error(failure.status, failure.message, "upstream_error", failure.code)
    return encode_data(error_body(failure.message, "upstream_error", failure.code))


def _encoded(response: aiohttp.ClientResponse) -> bool:
    return response.headers.get("content-encoding", "identity").lower() != "identity"


def watch_end(response: aiohttp.ClientResponse, context: RequestContext) -> StreamEnd | None:
    """A ``StreamEnd`` for a successful, uncompressed SSE answer of a known API, else None."""
    family = context.dialect.stream_family if context.dialect is not None else None
    if family is None or not 200 <= response.status < 300 or _encoded(response):
        return None
    return StreamEnd(family)


class RawRelay:
    """An upstream body relayed unread, bytes exactly as received (content encoding
    untouched). The front iterates ``response.content.iter_any()`` itself, feeding
    each piece to ``end`` (when set), and then asks ``finish`` (the body ended) or
    ``broke`` (it raised one of ``UPSTREAM_ERRORS``) for the bytes that close it,
    and ``close`` in every case. A generator around the loop would cost a frame at
    every piece and its own start and end, the largest part of an unguarded stream's
    overhead (benchmarks/README.md)."""

    __slots__ = ("context", "end", "pieces", "response", "seen", "sending", "silence", "since", "sse")

    def __init__(self, response: aiohttp.ClientResponse, sse: bool, context: RequestContext,
                 end: StreamEnd | None, silence: float | None = None) -> None:
        self.response = response
        self.sse = sse
        self.context = context
        self.end = end  # sees each piece of an SSE stream of a known API, to tell a complete one
        # With ``silence`` (seconds), the upstream was called without aiohttp's read timeout:
        # the front counts pieces here and ``SilenceWatch`` ends a body silent for that long.
        self.silence = silence
        self.pieces = self.seen = 0
        self.sending = False  # the front is handing a piece to a client that may be slow to take it
        self.since = 0.0

    def fall_silent(self) -> None:
        """End the body as aiohttp's own read timeout does: the read in progress raises."""
        self.response.content.set_exception(aiohttp.ServerTimeoutError("Timeout on reading data from socket"))

    def finish(self) -> bytes:
        """After the last piece: the error event for a stream that ended before its API's
        end event, else nothing."""
        end = self.end
        if end is None or end.complete:
            return b""
        log.warning("upstream stream ended before its last event")
        return self._fault(INCOMPLETE)

    def broke(self, exc: BaseException) -> bytes:
        """The error event for a body that broke after the response started; ``BodyCutOff``
        for one that cannot carry it (not SSE, or content-encoded)."""
        failure = classify_failure(exc)
        log.warning("upstream body broke after the response started: %s", type(exc).__name__)
        if not self.sse or _encoded(self.response):
            note_fault(self.context, failure.kind)
            raise BodyCutOff(failure.message) from exc
        return self._fault(failure)

    def _fault(self, failure: UpstreamFailure) -> bytes:
        note_fault(self.context, failure.kind)
        return AFTER_CUT + fault_event(self.context, failure)

    def close(self) -> None:
        self.context.upstream_finished()
        close_upstream(self.response)


class SilenceWatch:
    """The read timeout of unguarded streams, for all of them with one timer.

    aiohttp's read timeout re-arms a timer at every read from the socket: for a stream
    of small events, a timer cancelled and armed again per event, which cost about a
    tenth of an unguarded stream's CPU here (benchmarks/README.md). Instead the front
    counts the pieces it relays (``RawRelay.pieces``), and a sweep every eighth of the
    timeout (at least 50 ms, at most 5 s) ends a stream whose count has not moved for
    the timeout: it times out between ``silence`` and ``silence`` plus one sweep after
    its last byte, like aiohttp's, with the same error. Time the front spends handing a
    piece to a slow client does not count, as aiohttp stops its timer while back-pressure
    pauses reading. Guarded streams and other answers keep aiohttp's read timeout."""

    def __init__(self) -> None:
        self._relays: dict[RawRelay, None] = {}
        self._timer: asyncio.TimerHandle | None = None

    def add(self, relay: RawRelay) -> None:
        assert relay.silence is not None
        loop = asyncio.get_running_loop()
        relay.since = loop.time()
        self._relays[relay] = None
        if self._timer is None:
            self._timer = loop.call_later(_sweep_every(relay.silence), self._sweep)

    def discard(self, relay: RawRelay) -> None:
        self._relays.pop(relay, None)

    def _sweep(self) -> None:
        self._timer = None
        loop = asyncio.get_running_loop()
        now = loop.time()
        for relay in list(self._relays):
            assert relay.silence is not None
            if relay.pieces != relay.seen or relay.sending:  # a slow client is not a silent upstream
                relay.seen, relay.since = relay.pieces, now
            elif now - relay.since >= relay.silence:
                del self._relays[relay]
                relay.fall_silent()
        if self._relays:
            self._timer = loop.call_later(min(_sweep_every(r.silence or 0.0) for r in self._relays), self._sweep)


def _sweep_every(silence: float) -> float:
    return min(max(silence / 8, 0.05), 5.0)


async def _timed_process(guard: ChannelGuard, event: SSEEvent, context: RequestContext) -> bytes:
    started = time.perf_counter()
    out = await guard.process(event)
    context.add_output_time(time.perf_counter() - started)
    return out


def _events(decoder: SSEDecoder, chunk: bytes) -> Iterator[SSEEvent]:
    try:
        yield from decoder.feed(chunk)
    except ValueError as exc:  # an oversized event
        raise MalformedEvent(str(exc)) from None


async def relay_guarded(
    response: aiohttp.ClientResponse, guard: ChannelGuard, on_done: Callable[[ChannelGuard], None],
    context: RequestContext,
) -> AsyncIterator[bytes]:
    """SSE events through the streamed output stage, whose time is noted as the proxy's
    overhead. When the upstream fails, what the guards hold is checked and released
    (``guard.finish``) before the error event."""
    decoder = SSEDecoder()
    failure: UpstreamFailure | None = None
    try:
        try:
            async for chunk in response.content.iter_any():
                for event in _events(decoder, chunk):
                    out = await _timed_process(guard, event, context)
                    if out:
                        yield out
                    if guard.ended:
                        return
            for event in decoder.close():
                out = await _timed_process(guard, event, context)
                if out:
                    yield out
        except UPSTREAM_ERRORS as exc:
            failure = classify_failure(exc)
            log.warning("upstream stream broke after the response started: %s", type(exc).__name__)
        except MalformedEvent as exc:
            failure = UpstreamFailure(502, "bad_stream", "The upstream sent a stream event the proxy could not "
                                      "read.", "bad_stream")
            log.warning("upstream stream rejected: %s", exc)
        if failure is None and not guard.ended:
            failure = INCOMPLETE
            log.warning("upstream stream ended before its last event")
        if failure is not None:
            note_fault(context, failure.kind)
        context.upstream_finished()
        started = time.perf_counter()
        tail = await guard.finish()
        context.add_output_time(time.perf_counter() - started)
        if tail:
            yield tail
        if failure is not None:
            yield fault_event(context, failure)
    finally:
        guard.cancel_checks()
        context.upstream_finished()
        close_upstream(response)
        on_done(guard)
