"""The front door: every request's path is made canonical (``paths.py``); proxied
routes go straight to their lean ASGI handlers; every other path (health,
readiness, metrics) to the Starlette app.

Routing here is a dictionary look-up and a prefix test, instead of matching the
request against every route's pattern. The front also opens each proxied
request's context, sends its reply, contains its errors, and hands telemetry the
request's report when the response has ended.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import posixpath
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from guardproxy.engine.failures import describe_error
from guardproxy.http.check_api import guardrails_check
from guardproxy.http.paths import PathRejected, canonical_path
from guardproxy.proxy.access import admin_denied, admin_refusal, authenticate
from guardproxy.proxy.context import RequestContext
from guardproxy.proxy.dialects import DIALECTS, GUARDED_PATHS, Resolved, resolve
from guardproxy.proxy.errors import error_reply
from guardproxy.proxy.exchange import ClientDisconnected, Exchange
from guardproxy.proxy.handlers import guarded, own_error, passthrough
from guardproxy.proxy.relay import BodyCutOff, SilenceWatch
from guardproxy.proxy.reply import Reply
from guardproxy.proxy.response_watch import ResponseWatch
from guardproxy.proxy.runtime import Runtime
from guardproxy.proxy.upstream import UPSTREAM_ERRORS
from guardproxy.proxy.upstream_call import upstream_of

log = logging.getLogger("guardproxy")

Handler = Callable[[Runtime, Exchange, RequestContext], Awaitable[Reply]]
CHECK_PATH = "/v1/guardrails/check"
WATCH_AFTER = 0.25
CLIENT_CLOSED = 499  # nginx's status for a request whose client left before the answer
_OWN_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})



class ProxyFront:
    def __init__(self, app: ASGIApp, runtime: Runtime) -> None:
        self.app = app
        self.runtime = runtime
        self._streams = _Streams()  # this app's streams, on its server's event loop
        self._silences = SilenceWatch()  # the read timeout of its unguarded streams

    @staticmethod
    def route(method: str, path: str, resolved: Resolved | None = None) -> tuple[Handler, str] | None:
        """The handler and route label of a canonical path (and its dialect, if it has one),
        or None for the Starlette app."""
        if resolved is not None:
            return (guarded, resolved.dialect.name) if method == "POST" else (passthrough, "passthrough")
        if path == CHECK_PATH:
            return (guardrails_check if method == "POST" else _check_method_not_allowed), "check"
        if path == "/v1/models" or path.startswith("/v1/models/"):
            return passthrough, "models"
        if path.startswith("/v1/") or path.startswith("/openai/deployments/"):
            return passthrough, "passthrough"
        return None

    def _refused(self, handler: Handler, ex: Exchange, context: RequestContext) -> Reply | None:
        """A 401/403 for a caller without the key this route takes, else None."""
        runtime = self.runtime
        if handler is guardrails_check:
            if runtime.admin_key is None:  # any client key, when keys are configured (named in the report)
                refused = authenticate(runtime, ex.headers, "openai", context)
                denied = None if refused is None else (refused.status, refused.message)
            else:
                denied = admin_denied(runtime, ex.headers)
            if denied is None:
                return None
            context.report.auth_refused = True
            return admin_refusal(denied)
        if handler is _check_method_not_allowed:
            return None
        refused = authenticate(runtime, ex.headers, upstream_of(context), context)
        if refused is None:
            return None
        context.report.auth_refused = True
        return own_error(context, refused.status, refused.message, "invalid_request_error", refused.code)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            path = canonical_path(scope["path"], scope.get("raw_path"), GUARDED_PATHS)
        except PathRejected as exc:
            message = f"Invalid URL ({scope['method']}): {exc}."
            anthropic = _loosely_anthropic(str(scope["path"]))  # Anthropic's clients read its shape
            reply = (DIALECTS["/v1/messages"].error_reply(400, message, "invalid_request_error", "invalid_path")
                     if anthropic else error_reply(400, message, "invalid_request_error", "invalid_path"))
            await _send(reply, send)
            return
        resolved = resolve(path)
        if resolved is not None:
            path = resolved.path
        routed = self.route(scope["method"], path, resolved)
        if routed is None:
            if path == "/metrics" and not self.runtime.settings.metrics_port and (
                    self.runtime.admin_key or self.runtime.client_keys):
                denied = admin_denied(self.runtime, _decoded(scope["headers"]))
                if denied is not None:
                    await _send(admin_refusal(denied), send)
                    return
            if path != scope["path"] and path in _OWN_PATHS:
                scope = {**scope, "path": path}
            await self.app(scope, receive, send)
            return
        handler, route = routed
        runtime = self.runtime
        telemetry = runtime.telemetry
        observing = telemetry.enabled
        dialect = resolved.dialect if resolved is not None and handler is guarded else None
        trace = telemetry.start_trace(scope["method"], path, route, scope["headers"],
                                      dialect.operation if dialect is not None else None,
                                      dialect.provider if dialect is not None else None) if observing else None
        context = RequestContext(route, scope["method"], path, dialect, trace,
                                 keep_texts=trace is not None and runtime.settings.trace_content == "redacted",
                                 deployment=resolved.deployment if resolved is not None else None)
        evidence = runtime.evidence
        if evidence is not None and dialect is not None and runtime.ready:
            context.evidence = evidence.new_evidence(runtime.policies)
        watch = ResponseWatch(dialect, model=trace is not None) if observing and dialect is not None else None
        status = 500
        try:
            try:
                exchange = Exchange(scope, receive, send, path)
                refused = self._refused(handler, exchange, context)
                reply = refused if refused is not None else await handler(self.runtime, exchange, context)
            except ClientDisconnected:
                status = CLIENT_CLOSED
                return
            except Exception as exc:  # last line of defence: a 500 in the API's shape, never a traceback
                log.error("unhandled %s on %s %s", describe_error(exc), scope["method"], path)
                reply = own_error(context, 500, "The proxy failed to handle this request.", "server_error",
                                  "proxy_error")
            status = reply.status
            if dialect is not None:
                reply.headers += ((b"x-guardproxy-api", dialect.name.encode()),
                                  (b"x-guardproxy-request-id", context.report.request_id.encode()))
            try:
                if reply.chunks is None and reply.relay is None:  # _send_whole's, here: one coroutine fewer
                    await send({"type": "http.response.start", "status": reply.status,
                                "headers": _whole_headers(reply, watch)})
                    await send({"type": "http.response.body", "body": reply.body})
                else:
                    await _send_stream(reply, receive, send, watch, self._streams, self._silences)
            except BodyCutOff:
                pass  # the relay counted and logged it; the client sees a body that ends short
            except Exception as exc:  # the answer has started: nothing is left to send but the end
                log.error("unhandled %s while answering %s %s", describe_error(exc), scope["method"], path)
        finally:
            if observing or context.evidence is not None:
                report = context.finish(status)
                if watch is not None:
                    report.first_content, report.usage, report.response_model = (
                        watch.first_content, watch.usage, watch.response_model)
                if observing:
                    telemetry.request_finished(report, trace)
                if evidence is not None and context.evidence is not None and context.choice is not None:
                    evidence.request_finished(report, context.evidence, context.choice, runtime.policies,
                                              trace.trace_id if trace is not None else None)


def _loosely_anthropic(path: str) -> bool:
    """Whether a path refused as ambiguous was headed for Anthropic's Messages API."""
    return posixpath.normpath("/" + path.lower().lstrip("/")).startswith("/v1/messages")


def _decoded(headers: list[tuple[bytes, bytes]]) -> list[tuple[str, str]]:
    return [(name.decode("latin-1"), value.decode("latin-1")) for name, value in headers]


async def _send(reply: Reply, send: Send) -> None:
    """One of the front's own complete replies, in two ASGI messages."""
    await send({"type": "http.response.start", "status": reply.status, "headers": _whole_headers(reply, None)})
    await send({"type": "http.response.body", "body": reply.body})


def _whole_headers(reply: Reply, watch: ResponseWatch | None) -> list[tuple[bytes, bytes]]:
    """A complete reply's headers, with its length; ``watch`` reads the reply as it leaves."""
    headers = [*reply.headers, (b"content-length", str(len(reply.body)).encode())]
    if watch is not None:
        watch.start(headers)
        watch.body(reply.body)
    return headers


async def _send_stream(reply: Reply, receive: Receive, send: Send, watch: ResponseWatch | None,
                       streams: _Streams | None, silences: SilenceWatch | None = None) -> None:
    """``reply.relay`` (an upstream body relayed unread, iterated here) or ``reply.chunks``,
    piece by piece. ``watch`` sees what leaves (for metrics: first content, usage);
    ``streams`` watches for the client's disconnect (with ``reply.watch_disconnect``)."""
    relay, chunks = reply.relay, reply.chunks
    watcher = None
    if reply.watch_disconnect and streams is not None:  # one ending within WATCH_AFTER never needs the task
        watcher = _DisconnectWatch(receive, asyncio.current_task())
        streams.add(watcher)
    try:
        if watch is not None:
            watch.start(reply.headers)
        await send({"type": "http.response.start", "status": reply.status, "headers": reply.headers})
        if relay is not None:
            end = relay.end
            if relay.silence is not None and silences is not None:
                silences.add(relay)
            try:
                async for chunk in relay.response.content.iter_any():
                    relay.pieces += 1  # what SilenceWatch reads: the upstream is not silent
                    if end is not None:
                        end.feed(chunk)
                    if watch is not None:
                        watch.body(chunk)
                    relay.sending = True  # nor is it while a slow client holds the send (back-pressure)
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                    relay.sending = False
            except UPSTREAM_ERRORS as exc:
                tail = relay.broke(exc)  # or BodyCutOff, for a body that cannot carry an error event
            else:
                tail = relay.finish()
            if tail:
                await send({"type": "http.response.body", "body": tail, "more_body": True})
        else:
            assert chunks is not None
            async for chunk in chunks:
                if watch is not None:
                    watch.body(chunk)
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if watcher is None or not watcher.left or current is None:
            raise
        current.uncancel()  # our own cancellation: the client left, which is not an error
    finally:
        if watcher is not None:
            assert streams is not None
            streams.discard(watcher)
            watcher.stop()
        if relay is not None:
            if silences is not None:
                silences.discard(relay)
            relay.close()
        elif getattr(chunks, "ag_frame", True) is not None:  # not a generator that ran to its end
            closer = getattr(chunks, "aclose", None)
            if closer is not None:
                with contextlib.suppress(Exception):
                    await closer()


class _DisconnectWatch:
    """Cancels the streaming task when the client disconnects (uvicorn's ``send`` to a
    client that left returns quietly, so nothing else would stop the upstream stream)."""

    __slots__ = ("_receive", "_task", "_watcher", "left", "since")

    def __init__(self, receive: Receive, task: asyncio.Task[Any] | None) -> None:
        self._receive = receive
        self._task = task
        self._watcher: asyncio.Task[None] | None = None
        self.left = False
        self.since = 0.0

    def start(self) -> None:
        self._watcher = asyncio.create_task(self._watch())

    def stop(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()

    async def _watch(self) -> None:
        while True:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                self.left = True
                if self._task is not None:
                    self._task.cancel()
                return


class _Streams:
    """The streams being sent, and one timer for all of them: a stream still running
    WATCH_AFTER after it started gets its disconnect watcher task (within 1.5 x
    WATCH_AFTER). A timer per stream, armed and cancelled, costs more than the short
    streams that never need a watcher."""

    def __init__(self) -> None:
        self._waiting: dict[_DisconnectWatch, None] = {}  # in start order
        self._timer: asyncio.TimerHandle | None = None

    def add(self, watcher: _DisconnectWatch) -> None:
        loop = asyncio.get_running_loop()
        watcher.since = loop.time()
        self._waiting[watcher] = None
        if self._timer is None:
            self._timer = loop.call_later(WATCH_AFTER, self._sweep)

    def discard(self, watcher: _DisconnectWatch) -> None:
        self._waiting.pop(watcher, None)

    def _sweep(self) -> None:
        self._timer = None
        loop = asyncio.get_running_loop()
        due = loop.time() - WATCH_AFTER
        for watcher in list(self._waiting):
            if watcher.since > due:
                break  # the rest started later
            del self._waiting[watcher]
            watcher.start()
        if self._waiting:
            self._timer = loop.call_later(WATCH_AFTER / 2, self._sweep)


async def _check_method_not_allowed(runtime: Runtime, ex: Exchange, context: RequestContext) -> Reply:
    return error_reply(405, f"Method {ex.method} is not allowed on {ex.path}.", "invalid_request_error",
                       "method_not_allowed")
