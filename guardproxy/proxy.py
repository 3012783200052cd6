"""The proxied endpoints: input stage, the upstream call, output stage.

``/v1/chat/completions`` and ``/v1/completions`` run both stages (streamed or
not); ``/v1/embeddings`` runs the input stage only; every other ``/v1/`` path
is relayed untouched unless the policy denies unknown paths.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import httpx
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from guardproxy.decisions import append_notes, blocked_input_response, log_decision, withhold_choices
from guardproxy.engine import VERDICT_RANK, ChainResult, Verdict
from guardproxy.errors import ClientError, error_response
from guardproxy.extraction import apply_texts, request_segments, response_segments
from guardproxy.guards import GuardContext, Segment
from guardproxy.policy import RouteChoice
from guardproxy.relay import relay_guarded, relay_raw
from guardproxy.restoration import Restorer
from guardproxy.runtime import Runtime
from guardproxy.stream_guard import StreamGuard
from guardproxy.telemetry import RequestTelemetry, request_telemetry
from guardproxy.upstream import UPSTREAM_ERRORS, classify_failure, header_map, request_headers, response_headers

log = logging.getLogger("guardproxy.proxy")

ENDPOINTS = {"/v1/chat/completions": "chat", "/v1/completions": "completions", "/v1/embeddings": "embeddings"}
_REQUIRED = {"chat": "messages", "completions": "prompt", "embeddings": "input"}


def verdict_headers(verdict: Verdict, tag: str) -> dict[str, str]:
    return {"x-guardproxy-verdict": verdict, "x-guardproxy-policy": tag}


def worst(*verdicts: Verdict) -> Verdict:
    return max(verdicts, key=VERDICT_RANK.__getitem__)


async def read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ClientError(413, f"The request body is larger than the proxy's limit of {limit} bytes.",
                          "request_too_large")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ClientError(413, f"The request body is larger than the proxy's limit of {limit} bytes.",
                              "request_too_large")
        chunks.append(chunk)
    return b"".join(chunks)


def parse_payload(body: bytes, endpoint: str, content_encoding: str | None) -> dict[str, Any]:
    if content_encoding and content_encoding.lower() != "identity":
        raise ClientError(415, "Compressed request bodies are not supported.", "unsupported_content_encoding")
    try:
        payload = json.loads(body)
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


def upstream_url(runtime: Runtime, request: Request) -> str:
    path = request.url.path.removeprefix("/v1")
    query = request.url.query
    return runtime.settings.upstream_base + path + (f"?{query}" if query else "")


async def send_upstream(
    runtime: Runtime, request: Request, body: bytes | None, identity: bool
) -> httpx.Response:
    headers = request_headers(request.headers.items(), runtime.upstream_key)
    if identity:  # the proxy reads these bodies, so ask for them uncompressed
        headers = [(n, v) for n, v in headers if n.lower() != "accept-encoding"] + [("accept-encoding", "identity")]
    content = body if body is not None else request.stream()
    upstream_request = runtime.client.build_request(
        request.method, upstream_url(runtime, request), headers=headers, content=content
    )
    record = request_telemetry(request)
    upstream_request.headers.update(record.upstream_sending(request.method))
    upstream = await runtime.client.send(upstream_request, stream=True)
    record.upstream_answered(upstream.status_code)
    return upstream


def upstream_failure_response(exc: BaseException, headers: dict[str, str], record: RequestTelemetry) -> Response:
    record.upstream_failed(exc)
    failure = classify_failure(exc)
    log.warning("upstream request failed: %s -> %d", type(exc).__name__, failure.status)
    return error_response(failure.status, failure.message, "upstream_error", failure.code, headers=headers)


async def guarded(request: Request) -> Response:
    runtime: Runtime = request.app.state.runtime
    record = request_telemetry(request)
    endpoint = ENDPOINTS[request.url.path]
    policies = runtime.policies
    documents: tuple[str, ...] = ()
    try:
        body = await read_body(request, runtime.settings.max_body_bytes)
        payload = parse_payload(body, endpoint, request.headers.get("content-encoding"))
        has_extension = EXTENSION_FIELD in payload
        if has_extension:
            documents = take_extension(payload)
    except ClientError as exc:
        choice = policies.select(None, header_map(request.headers.items()), request.url.path)
        return exc.response(verdict_headers("pass", choice.tag))
    model = payload.get("model") if isinstance(payload.get("model"), str) else None
    record.model = model
    choice = policies.select(model, header_map(request.headers.items()), request.url.path)
    segments = request_segments(endpoint, payload)
    guard_upstream = runtime.guard_upstream(request.headers.get("authorization"))
    context = GuardContext("input", endpoint, model, upstream=guard_upstream)
    checked = await runtime.engine.run(choice.policy, choice.chain.input, segments, context)
    log_decision(choice, checked)
    record.stage_done(choice, checked, "input")
    if checked.verdict == "blocked":
        return blocked_input_response(choice, checked)
    rewrites = checked.rewrites()
    if rewrites:
        apply_texts(payload, rewrites)
    if rewrites or has_extension:
        body = json.dumps(payload, ensure_ascii=False).encode()
    output_entries = choice.chain.output if endpoint != "embeddings" else []
    # This request's placeholder map: local to this call, never logged or traced.
    restorer = Restorer(checked.restorations() if endpoint != "embeddings" else {})
    reads_output = bool(output_entries) or bool(restorer)
    try:
        upstream = await send_upstream(runtime, request, body, identity=reads_output)
    except UPSTREAM_ERRORS as exc:
        return upstream_failure_response(exc, verdict_headers(checked.verdict, choice.tag), record)
    is_sse = upstream.headers.get("content-type", "").startswith("text/event-stream")
    if not reads_output or upstream.status_code >= 300:
        return StreamingResponse(
            relay_raw(upstream, is_sse, record), status_code=upstream.status_code,
            headers=_merge(response_headers(upstream.headers.multi_items(), decoded=False),
                           verdict_headers(checked.verdict, choice.tag)),
        )
    # Output guards see the prompt as the model saw it (redacted), and the documents sent with it.
    prompt = tuple(Segment(text, seg.path, seg.role) for seg, text in zip(segments, checked.texts, strict=True))
    out_context = GuardContext("output", endpoint, model, documents, prompt, upstream=guard_upstream)
    if is_sse:
        return _guarded_stream(runtime, upstream, choice, checked, out_context, restorer, record)
    return await _guarded_json(runtime, upstream, choice, checked, out_context, restorer, record)


def _guarded_stream(
    runtime: Runtime, upstream: httpx.Response, choice: RouteChoice, checked: ChainResult, context: GuardContext,
    restorer: Restorer, record: RequestTelemetry,
) -> Response:
    guard = StreamGuard(runtime.engine, choice.policy, choice.chain.output, context, context.endpoint, restorer)

    def done(finished: StreamGuard) -> None:
        log_decision(choice, finished)
        record.stage_done(choice, finished, "output")

    # Headers leave before the answer does, so they carry the input verdict; the
    # stream's own verdict arrives as its last SSE comment.
    return StreamingResponse(
        relay_guarded(upstream, guard, done, record), status_code=upstream.status_code,
        headers=_merge(response_headers(upstream.headers.multi_items(), decoded=True),
                       verdict_headers(checked.verdict, choice.tag)),
    )


async def _guarded_json(
    runtime: Runtime, upstream: httpx.Response, choice: RouteChoice, checked: ChainResult, context: GuardContext,
    restorer: Restorer, record: RequestTelemetry,
) -> Response:
    try:
        raw = await upstream.aread()
    except UPSTREAM_ERRORS as exc:
        return upstream_failure_response(exc, verdict_headers(checked.verdict, choice.tag), record)
    finally:
        await upstream.aclose()
    record.upstream_finished()
    output_started = time.perf_counter()
    headers = response_headers(upstream.headers.multi_items(), decoded=True)
    try:
        payload = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        payload = None
    if not isinstance(payload, dict):
        log.warning("upstream answered %d with a body that is not a JSON object; passed unchecked",
                    upstream.status_code)
        return Response(raw, upstream.status_code, headers=_merge(headers, verdict_headers(checked.verdict,
                                                                                           choice.tag)))
    segments = response_segments(context.endpoint, payload)
    result = await runtime.engine.run(choice.policy, choice.chain.output, segments, context)
    log_decision(choice, result)
    record.stage_done(choice, result, "output")
    restorer.restore_result(result)
    if result.verdict == "blocked":
        withhold_choices(payload, result, context.endpoint)
        raw = json.dumps(payload, ensure_ascii=False).encode()
    else:
        if result.rewrites():
            apply_texts(payload, result.rewrites())
        if result.notes:
            append_notes(payload, result, context.endpoint)
        if result.rewrites() or result.notes:
            raw = json.dumps(payload, ensure_ascii=False).encode()
    verdict = worst(checked.verdict, result.verdict)
    record.add_output_time(time.perf_counter() - output_started)
    return Response(raw, upstream.status_code, headers=_merge(headers, verdict_headers(verdict, choice.tag)))


def _merge(upstream_headers: list[tuple[str, str]], own: dict[str, str]) -> dict[str, str]:
    """Starlette takes a mapping; repeated upstream headers (set-cookie) are joined."""
    merged: dict[str, str] = {}
    for name, value in upstream_headers:
        key = name.lower()
        merged[key] = f"{merged[key]}, {value}" if key in merged else value
    merged.update(own)
    return merged


async def passthrough(request: Request) -> Response:
    """Any other ``/v1/`` path, body and answer streamed untouched."""
    runtime: Runtime = request.app.state.runtime
    choice = runtime.policies.select(None, header_map(request.headers.items()), request.url.path)
    headers = verdict_headers("pass", choice.tag)
    if choice.policy.unknown_paths == "deny" and request.url.path not in ("/v1/models",) and not \
            request.url.path.startswith("/v1/models/"):
        return error_response(404, f"Invalid URL ({request.method} {request.url.path}): this path is not allowed "
                              "by the proxy's policy.", "invalid_request_error", "unknown_url", headers=headers)
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > runtime.settings.max_body_bytes:
        return ClientError(413, "The request body is larger than the proxy's limit of "
                           f"{runtime.settings.max_body_bytes} bytes.", "request_too_large").response(headers)
    has_body = request.method not in ("GET", "HEAD", "DELETE", "OPTIONS")
    try:
        upstream = await send_upstream(runtime, request, None if has_body else b"", identity=False)
    except UPSTREAM_ERRORS as exc:
        return upstream_failure_response(exc, headers, request_telemetry(request))
    is_sse = upstream.headers.get("content-type", "").startswith("text/event-stream")
    return StreamingResponse(
        relay_raw(upstream, is_sse, request_telemetry(request)), status_code=upstream.status_code,
        headers=_merge(response_headers(upstream.headers.multi_items(), decoded=False), headers),
    )
