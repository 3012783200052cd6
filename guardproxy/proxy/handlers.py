"""The proxied endpoints: input stage, the upstream call, output stage.

``/v1/chat/completions`` and ``/v1/completions`` run both stages (streamed or
not); ``/v1/embeddings`` runs the input stage only; every other ``/v1/`` path
is relayed untouched unless the policy denies unknown paths.

These are the hot path, so they speak raw ASGI (``exchange.py``), parse each body
once, skip a stage whose chain is empty, and forward the client's own bytes when
no guard changed anything.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
from starlette.responses import Response

from guardproxy import json_codec
from guardproxy.engine.core import VERDICT_RANK, ChainResult, Verdict
from guardproxy.guards import GuardContext, Segment
from guardproxy.http.errors import ClientError, error_response
from guardproxy.http.exchange import BodyReply, Exchange, RawHeaders, StreamReply, too_large
from guardproxy.http.runtime import Runtime
from guardproxy.policy import RouteChoice
from guardproxy.proxy.decisions import append_notes, blocked_input_response, log_decision, withhold_choices
from guardproxy.proxy.extraction import apply_texts, request_segments, response_segments
from guardproxy.proxy.relay import close_upstream, relay_guarded, relay_raw
from guardproxy.proxy.restoration import Restorer
from guardproxy.proxy.stream_guard import StreamGuard
from guardproxy.proxy.upstream import UPSTREAM_ERRORS, classify_failure, request_headers, response_headers
from guardproxy.telemetry import RequestTelemetry, request_telemetry

log = logging.getLogger("guardproxy.proxy.handlers")

ENDPOINTS = {"/v1/chat/completions": "chat", "/v1/completions": "completions", "/v1/embeddings": "embeddings"}
_REQUIRED = {"chat": "messages", "completions": "prompt", "embeddings": "input"}
_NO_RESTORING = Restorer({})
_WHOLE_BODY_LIMIT = 1 << 20  # answers up to this size with a declared length are read whole, then sent at once
Reply = Response | BodyReply | StreamReply


def verdict_headers(verdict: Verdict, tag: str) -> dict[str, str]:
    return {"x-guardproxy-verdict": verdict, "x-guardproxy-policy": tag}


def _raw_verdict(verdict: Verdict, tag: str) -> RawHeaders:
    return [(b"x-guardproxy-verdict", verdict.encode()), (b"x-guardproxy-policy", tag.encode())]


def worst(*verdicts: Verdict) -> Verdict:
    return max(verdicts, key=VERDICT_RANK.__getitem__)


def parse_payload(body: bytes, endpoint: str, content_encoding: str | None) -> dict[str, Any]:
    if content_encoding and content_encoding.lower() != "identity":
        raise ClientError(415, "Compressed request bodies are not supported.", "unsupported_content_encoding")
    try:
        payload = json_codec.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise ClientError(400, "We could not parse the JSON body of your request. (HINT: This likely means "
                          "you aren't using your HTTP library correctly.)", "invalid_json") from None
    if not isinstance(payload, dict):
        raise ClientError(400, "The request body must be a JSON object.", "invalid_json")
    required = _REQUIRED[endpoint]
    if required not in payload:
        raise ClientError(400, f"Missing required parameter: '{required}'.", "missing_required_parameter",
                          required)
    if endpoint == "chat" and (not isinstance(payload["messages"], list) or not all(
            isinstance(m, dict) for m in payload["messages"])):
        raise ClientError(400, "'messages' must be an array of message objects.", "invalid_type", "messages")
    return payload


EXTENSION_FIELD = "guardproxy"


def take_extension(payload: dict[str, Any]) -> tuple[str, ...]:
    """Remove the proxy's own request field, ``guardproxy: {context: [..]}``, so the
    upstream never sees it, and return the documents it carries."""
    extension = payload.pop(EXTENSION_FIELD)
    if not isinstance(extension, dict) or set(extension) - {"context"}:
        raise ClientError(400, "'guardproxy' must be an object with the key 'context'.", "invalid_extension",
                          EXTENSION_FIELD)
    documents = extension.get("context", [])
    if not isinstance(documents, list) or not all(isinstance(d, str) for d in documents):
        raise ClientError(400, "'guardproxy.context' must be an array of strings.", "invalid_extension",
                          "guardproxy.context")
    return tuple(documents)


def upstream_url(runtime: Runtime, ex: Exchange) -> str:
    path = ex.path.removeprefix("/v1")
    return runtime.settings.upstream_base + path + (f"?{ex.query}" if ex.query else "")


async def send_upstream(
    runtime: Runtime, ex: Exchange, body: bytes | AsyncIterator[bytes] | None, reads_body: bool
) -> aiohttp.ClientResponse:
    """``body``: bytes, the client's body streamed through, or None for none. ``reads_body``:
    the proxy reads the answer, so it asks for it uncompressed and decodes it if it comes
    compressed anyway."""
    headers = request_headers(ex.headers, runtime.upstream_key)
    if reads_body:
        headers = [(n, v) for n, v in headers if n.lower() != "accept-encoding"] + [("accept-encoding", "identity")]
    record = request_telemetry(ex.scope)
    trace_headers = record.upstream_sending(ex.method)
    if trace_headers:  # the proxy's span is the upstream call's parent: its traceparent replaces the client's
        headers = [(n, v) for n, v in headers if n.lower() not in trace_headers] + list(trace_headers.items())
    assert runtime.session is not None, "the relay session is created in the app's lifespan"
    upstream = await runtime.session.request(
        ex.method, upstream_url(runtime, ex), headers=headers, data=body,
        allow_redirects=False, auto_decompress=reads_body,
    )
    record.upstream_answered(upstream.status)
    return upstream


def upstream_failure_response(exc: BaseException, headers: dict[str, str], record: RequestTelemetry) -> Response:
    record.upstream_failed(exc)
    failure = classify_failure(exc)
    log.warning("upstream request failed: %s -> %d", type(exc).__name__, failure.status)
    return error_response(failure.status, failure.message, "upstream_error", failure.code, headers=headers)


def _is_sse(upstream: aiohttp.ClientResponse) -> bool:
    return upstream.headers.get("content-type", "").startswith("text/event-stream")


async def relay_reply(upstream: aiohttp.ClientResponse, own: RawHeaders, record: RequestTelemetry,
                      body_done: bool) -> BodyReply | StreamReply:
    """The upstream's answer as it came. A small answer with a declared length is read
    whole and sent in one piece; anything else, streams above all, is relayed as it arrives."""
    headers = response_headers(upstream.raw_headers, decoded=False) + own
    sse = _is_sse(upstream)
    length = upstream.content_length
    if not sse and length is not None and length <= _WHOLE_BODY_LIMIT:
        try:
            raw = await upstream.read()
        except UPSTREAM_ERRORS as exc:
            record.upstream_failed(exc)
            log.warning("upstream body broke mid-way: %s", type(exc).__name__)
            raw = b""
        finally:
            record.upstream_finished()
            close_upstream(upstream)
        return BodyReply(upstream.status, headers, raw)
    return StreamReply(upstream.status, headers, relay_raw(upstream, sse, record), watch_disconnect=sse and body_done)


async def guarded(runtime: Runtime, ex: Exchange) -> Reply:
    record = request_telemetry(ex.scope)
    endpoint = ENDPOINTS[ex.path]
    policies = runtime.policies
    documents: tuple[str, ...] = ()
    try:
        body = await ex.read_body(runtime.settings.max_body_bytes)
        payload = parse_payload(body, endpoint, ex.header("content-encoding"))
        has_extension = EXTENSION_FIELD in payload
        if has_extension:
            documents = take_extension(payload)
    except ClientError as exc:
        choice = policies.select(None, ex.header_map(), ex.path)
        return exc.response(verdict_headers("pass", choice.tag))
    model = payload.get("model") if isinstance(payload.get("model"), str) else None
    record.model = model
    choice = policies.select(model, ex.header_map(), ex.path)
    input_entries = choice.chain.input
    output_entries = choice.chain.output if endpoint != "embeddings" else []
    checked: ChainResult | None = None
    restorer = _NO_RESTORING
    if input_entries:
        segments = request_segments(endpoint, payload)
        context = GuardContext("input", endpoint, model,
                               upstream=runtime.guard_upstream(ex.header("authorization")))
        checked = await runtime.engine.run(choice.policy, input_entries, segments, context)
        log_decision(choice, checked)
        record.stage_done(choice, checked, "input")
        if checked.verdict == "blocked":
            return blocked_input_response(choice, checked)
        rewrites = checked.rewrites()
        if rewrites:
            apply_texts(payload, rewrites)
        if rewrites or has_extension:
            body = json_codec.dumps(payload)
        if endpoint != "embeddings":  # this request's placeholder map: local to this call, never logged or traced
            restorer = Restorer(checked.restorations())
    elif has_extension:
        body = json_codec.dumps(payload)
    verdict: Verdict = checked.verdict if checked is not None else "pass"
    reads_output = bool(output_entries) or bool(restorer)
    try:
        upstream = await send_upstream(runtime, ex, body, reads_body=reads_output)
    except UPSTREAM_ERRORS as exc:
        return upstream_failure_response(exc, verdict_headers(verdict, choice.tag), record)
    if not reads_output or upstream.status >= 300:
        return await relay_reply(upstream, _raw_verdict(verdict, choice.tag), record, body_done=True)
    # Output guards see the prompt as the model saw it (redacted), and the documents sent with it.
    if checked is not None:
        prompt = tuple(Segment(text, seg.path, seg.role) for seg, text in zip(checked.segments, checked.texts,
                                                                                strict=True))
    else:
        prompt = tuple(request_segments(endpoint, payload))
    out_context = GuardContext("output", endpoint, model, documents, prompt,
                               upstream=runtime.guard_upstream(ex.header("authorization")))
    if _is_sse(upstream):
        return _guarded_stream(runtime, upstream, choice, verdict, out_context, restorer, record)
    return await _guarded_json(runtime, upstream, choice, verdict, out_context, restorer, record)


def _guarded_stream(
    runtime: Runtime, upstream: aiohttp.ClientResponse, choice: RouteChoice, verdict: Verdict,
    context: GuardContext, restorer: Restorer, record: RequestTelemetry,
) -> StreamReply:
    guard = StreamGuard(runtime.engine, choice.policy, choice.chain.output, context, context.endpoint, restorer)

    def done(finished: StreamGuard) -> None:
        log_decision(choice, finished)
        record.stage_done(choice, finished, "output")

    # Headers leave before the answer does, so they carry the input verdict; the
    # stream's own verdict arrives as its last SSE comment.
    headers = response_headers(upstream.raw_headers, decoded=True) + _raw_verdict(verdict, choice.tag)
    return StreamReply(upstream.status, headers, relay_guarded(upstream, guard, done, record), watch_disconnect=True)


async def _guarded_json(
    runtime: Runtime, upstream: aiohttp.ClientResponse, choice: RouteChoice, input_verdict: Verdict,
    context: GuardContext, restorer: Restorer, record: RequestTelemetry,
) -> Reply:
    try:
        raw = await upstream.read()
    except UPSTREAM_ERRORS as exc:
        return upstream_failure_response(exc, verdict_headers(input_verdict, choice.tag), record)
    finally:
        close_upstream(upstream)
    record.upstream_finished()
    output_started = time.perf_counter()
    headers = response_headers(upstream.raw_headers, decoded=True)
    try:
        payload = json_codec.loads(raw)
    except (ValueError, UnicodeDecodeError):
        payload = None
    if not isinstance(payload, dict):
        log.warning("upstream answered %d with a body that is not a JSON object; passed unchecked", upstream.status)
        return BodyReply(upstream.status, headers + _raw_verdict(input_verdict, choice.tag), raw)
    segments = response_segments(context.endpoint, payload)
    result = await runtime.engine.run(choice.policy, choice.chain.output, segments, context)
    log_decision(choice, result)
    record.stage_done(choice, result, "output")
    restorer.restore_result(result)
    if result.verdict == "blocked":
        withhold_choices(payload, result, context.endpoint)
        raw = json_codec.dumps(payload)
    else:
        rewrites = result.rewrites()
        if rewrites:
            apply_texts(payload, rewrites)
        if result.notes:
            append_notes(payload, result, context.endpoint)
        if rewrites or result.notes:
            raw = json_codec.dumps(payload)
    verdict = worst(input_verdict, result.verdict)
    record.add_output_time(time.perf_counter() - output_started)
    return BodyReply(upstream.status, headers + _raw_verdict(verdict, choice.tag), raw)


_ALWAYS_ALLOWED = "/v1/models"


async def passthrough(runtime: Runtime, ex: Exchange) -> Reply:
    """Any other ``/v1/`` path, body and answer streamed untouched."""
    choice = runtime.policies.select(None, ex.header_map(), ex.path)
    headers = verdict_headers("pass", choice.tag)
    if choice.policy.unknown_paths == "deny" and ex.path != _ALWAYS_ALLOWED and \
            not ex.path.startswith(_ALWAYS_ALLOWED + "/"):
        return error_response(404, f"Invalid URL ({ex.method} {ex.path}): this path is not allowed "
                              "by the proxy's policy.", "invalid_request_error", "unknown_url", headers=headers)
    if ex.declared_too_large(runtime.settings.max_body_bytes):
        return too_large(runtime.settings.max_body_bytes).response(headers)
    has_body = ex.method not in ("GET", "HEAD", "DELETE", "OPTIONS")
    record = request_telemetry(ex.scope)
    try:
        upstream = await send_upstream(runtime, ex, ex.stream() if has_body else None, reads_body=False)
    except UPSTREAM_ERRORS as exc:
        return upstream_failure_response(exc, headers, record)
    return await relay_reply(upstream, _raw_verdict("pass", choice.tag), record,
                             body_done=ex.body_done or not has_body)
