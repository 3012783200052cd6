"""The proxied endpoints: input stage, the upstream call, output stage.

A guarded path (one with a dialect, ``dialects/``) runs the input stage, and the
output stage when the dialect has one (streamed or not). Any other path under
``/v1/`` is relayed untouched if it is a GET (or HEAD), or if the policy lists it
in ``passthrough`` or opts in with ``unknown_paths: pass``; otherwise it is
refused with a 404 naming it.

These are the hot path, so they speak raw ASGI (``exchange.py``), parse each body
once, and skip a stage whose chain is empty. A body the input stage checked goes
upstream re-written from what the guards read, never as the client's bytes, which
another parser could read differently (a key given twice); an unchecked body (no
input chain) goes as it came.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import logging
import time

import aiohttp

from guardproxy import json_codec
from guardproxy.engine import ChainResult
from guardproxy.guards import GuardContext, Segment, Stage
from guardproxy.policy import RouteChoice
from guardproxy.proxy.access import choose_route
from guardproxy.proxy.context import Outcome, RequestContext
from guardproxy.proxy.decisions import log_decision, violations
from guardproxy.proxy.dialects import ALL_CHOICES, DIALECTS, Dialect, apply_texts
from guardproxy.proxy.errors import ClientError, error_reply
from guardproxy.proxy.exchange import Exchange, too_large
from guardproxy.proxy.relay import RawRelay, close_upstream, note_fault, relay_guarded, watch_end
from guardproxy.proxy.reply import RawHeaders, Reply, verdict_headers
from guardproxy.proxy.request_body import EXTENSION_FIELD, parse_payload, take_extension
from guardproxy.proxy.restoration import Restorer
from guardproxy.proxy.runtime import Runtime
from guardproxy.proxy.stream_guards import new_stream_guard
from guardproxy.proxy.upstream import (
    UPSTREAM_ERRORS,
    UpstreamRedirect,
    classify_failure,
    response_headers,
)
from guardproxy.proxy.upstream_call import (
    answered,
    anthropic_path,
    silent_stream,
    upstream_of,
    upstream_request,
    within,
)

log = logging.getLogger("guardproxy.proxy")

_NO_RESTORING = Restorer({})
_WHOLE_BODY_LIMIT = 1 << 20  # answers up to this size with a declared length are read whole, then sent at once
_SAFE_METHODS = frozenset({"GET", "HEAD"})
_NO_HEADERS: dict[str, str] = {}  # routing's header map when no route matches on a header (never written)


_MESSAGES = DIALECTS["/v1/messages"]


def shape_of(context: RequestContext) -> Dialect | None:
    """The dialect whose error shape the proxy's own errors take on this path."""
    if context.dialect is not None:
        return context.dialect
    return _MESSAGES if anthropic_path(context.report.path) else None


def own_error(context: RequestContext, status: int, message: str, type_: str, code: str | None = None,
              param: str | None = None, headers: RawHeaders | None = None) -> Reply:
    shape = shape_of(context)
    if shape is None:
        return error_reply(status, message, type_, code, param, headers)
    return shape.error_reply(status, message, type_, code, param, headers)


def unconfigured(runtime: Runtime, context: RequestContext, headers: RawHeaders) -> Reply | None:
    """A 404 for a path whose upstream the operator did not configure (Azure's deployments)."""
    if runtime.upstream_bases[upstream_of(context)] is not None:
        return None
    return own_error(context, 404, f"The proxy has no Azure upstream for {context.report.path}: start it with "
                     "--azure-upstream https://RESOURCE.openai.azure.com.", "invalid_request_error", "unknown_url",
                     headers=headers)


def upstream_failure(exc: BaseException, headers: RawHeaders, context: RequestContext) -> Reply:
    failure = classify_failure(exc)
    note_fault(context, failure.kind)
    log.warning("upstream request failed: %s -> %d", exc if isinstance(exc, UpstreamRedirect) else type(exc).__name__,
                failure.status)
    return own_error(context, failure.status, failure.message, "upstream_error", failure.code, headers=headers)


def _is_sse(upstream: aiohttp.ClientResponse) -> bool:
    return upstream.headers.get("content-type", "").startswith("text/event-stream")


def read_whole(upstream: aiohttp.ClientResponse) -> bool:
    """Whether an answer is read whole and sent in one piece: a small one with a declared
    length, not a stream."""
    length = upstream.content_length
    return length is not None and length <= _WHOLE_BODY_LIMIT and not _is_sse(upstream)


def relay_stream(upstream: aiohttp.ClientResponse, own: RawHeaders, context: RequestContext,
                 body_done: bool, silence: float | None = None) -> Reply:
    """The upstream's answer relayed as it arrives; ``silence``: see ``RawRelay``."""
    sse = _is_sse(upstream)
    return Reply(upstream.status, response_headers(upstream.raw_headers, decoded=False) + own,
                 relay=RawRelay(upstream, sse, context, watch_end(upstream, context) if sse else None, silence),
                 watch_disconnect=sse and body_done)


async def relay_reply(upstream: aiohttp.ClientResponse, own: RawHeaders, context: RequestContext,
                      body_done: bool, silence: float | None = None) -> Reply:
    """The upstream's answer as it came: read whole (``read_whole``), or relayed as it arrives.
    ``silence``: the call had no read timeout of aiohttp's (``upstream_call.silent_stream``), so a
    stream is watched by ``SilenceWatch`` and a whole answer must come within that time in all."""
    if not read_whole(upstream):
        return relay_stream(upstream, own, context, body_done, silence)
    try:
        raw = await (within(upstream.read(), silence) if silence is not None else upstream.read())
    except UPSTREAM_ERRORS as exc:  # nothing has gone to the client yet: a 502/504 instead
        return upstream_failure(exc, own, context)
    finally:
        context.upstream_finished()
        close_upstream(upstream)
    return Reply(upstream.status, response_headers(upstream.raw_headers, decoded=False) + own, raw)


def _guard_context(runtime: Runtime, ex: Exchange, dialect: Dialect, stage: Stage, model: str | None,
                   documents: tuple[str, ...] = (), prompt: tuple[Segment, ...] = ()) -> GuardContext:
    return GuardContext(stage, dialect.name, model, documents, prompt,
                        upstream=runtime.guard_upstream(ex.header("authorization")))


async def _run_stage(runtime: Runtime, context: RequestContext, choice: RouteChoice, stage: str,
                     segments: list[Segment], guard_context: GuardContext) -> ChainResult:
    entries = choice.chain.input if stage == "input" else choice.chain.output
    started_ns = time.time_ns()
    result = await runtime.engine.run(choice.policy, entries, segments, guard_context)
    context.chain_ran(result, started_ns)
    context.stage_done(stage, result)
    log_decision(choice, stage, result)
    return result


def input_blocked(dialect: Dialect, choice: RouteChoice, result: ChainResult) -> Reply:
    message = result.message or choice.policy.messages.input_blocked
    details = {"policy": choice.tag, "chain": choice.chain_name, "stage": "input",
               "violations": violations(result.blocking, result.segments)}
    return dialect.input_blocked(message, details, verdict_headers("blocked", choice.tag))


async def guarded(runtime: Runtime, ex: Exchange, context: RequestContext) -> Reply:
    dialect = context.dialect
    assert dialect is not None, "the front routes only dialect paths here"
    policies = runtime.policies
    documents: tuple[str, ...] = ()
    headers = dict(ex.headers) if policies.routes_on_headers else _NO_HEADERS
    try:
        body = await ex.read_body(runtime.settings.max_body_bytes)
        payload = parse_payload(body, dialect, ex.header("content-encoding"))
        has_extension = EXTENSION_FIELD in payload
        if has_extension:
            documents = take_extension(payload)
    except ClientError as exc:
        choice = policies.select(context.deployment, headers, ex.path, dialect.name) if context.client_key is None \
            else policies.pinned(context.client_key.policy, context.client_key.chain)
        own = verdict_headers("pass", choice.tag) if choice is not None else []
        if choice is not None:
            context.routed(choice, context.deployment)
        return dialect.error_reply(exc.status, exc.message, "invalid_request_error", exc.code, exc.param, own)
    model = payload.get("model") if isinstance(payload.get("model"), str) else context.deployment
    try:
        choice = choose_route(runtime, context, model, headers, ex.path, dialect.name)
    except ClientError as exc:
        context.report.auth_refused = exc.status == 403
        return dialect.error_reply(exc.status, exc.message, "permission_error" if exc.status == 403 else "api_error",
                                   exc.code, exc.param)
    context.routed(choice, model)
    missing = unconfigured(runtime, context, verdict_headers("pass", choice.tag))
    if missing is not None:
        return missing
    output_entries = choice.chain.output if dialect.guards_output else []
    checked: ChainResult | None = None
    restorer = _NO_RESTORING
    evidence = context.evidence
    if evidence is not None and evidence.keep_segments:
        evidence.documents = documents
        if not choice.chain.input:
            evidence.unguarded_input = list(dialect.request_segments(payload))
    if choice.chain.input:
        segments = dialect.request_segments(payload)
        checked = await _run_stage(runtime, context, choice, "input", segments,
                                   _guard_context(runtime, ex, dialect, "input", model, documents))
        if checked.verdict == "blocked":
            return input_blocked(dialect, choice, checked)
        rewrites = checked.rewrites()
        if rewrites:
            apply_texts(payload, rewrites)
        # What was checked is what goes upstream, always re-written: the client's own bytes could
        # read differently to another parser (a key given twice: the guards saw the last one).
        body = json_codec.dumps(payload)
        if dialect.guards_output:  # this request's placeholder map: local to this call, never logged or traced
            restorer = Restorer(checked.restorations())
    elif has_extension:
        body = json_codec.dumps(payload)
    reads_output = bool(output_entries) or bool(restorer)
    silent = silent_stream(runtime, dialect.asks_stream(payload), reads_output)
    try:
        upstream = answered(context, await upstream_request(runtime, ex, context, body, reads_output, silent))
    except UPSTREAM_ERRORS as exc:
        return upstream_failure(exc, verdict_headers(context.verdict, choice.tag), context)
    if not reads_output or upstream.status >= 300:
        return await relay_reply(upstream, verdict_headers(context.verdict, choice.tag), context, body_done=True,
                                 silence=runtime.settings.upstream_timeout if silent else None)
    # Output guards see the prompt as the model saw it (redacted), and the documents sent with it.
    if checked is not None:
        prompt = tuple(dataclasses.replace(seg, text=text)
                       for seg, text in zip(checked.segments, checked.texts, strict=True))
    else:
        prompt = tuple(dialect.request_segments(payload))
    out_context = _guard_context(runtime, ex, dialect, "output", model, documents, prompt)
    if _is_sse(upstream) and dialect.stream_family is not None:
        return _guarded_stream(runtime, upstream, choice, context, out_context, restorer,
                               dialect.choice_count(payload))
    return await _guarded_json(runtime, upstream, choice, context, out_context, restorer)


def _guarded_stream(
    runtime: Runtime, upstream: aiohttp.ClientResponse, choice: RouteChoice, context: RequestContext,
    guard_context: GuardContext, restorer: Restorer, choices: int,
) -> Reply:
    assert context.dialect is not None
    guard = new_stream_guard(runtime.engine, choice.policy, choice.chain.output, guard_context, context.dialect,
                             restorer, choices, on_run=context.chain_ran)
    if context.evidence is not None and context.evidence.keep_segments:
        guard.streamed = {}

    def done(finished: Outcome) -> None:
        context.stage_done("output", finished)
        log_decision(choice, "output", finished)

    # Headers leave before the answer does, so they carry the input verdict; the
    # stream's own verdict arrives as its last SSE comment.
    headers = response_headers(upstream.raw_headers, decoded=True) + verdict_headers(context.verdict, choice.tag)
    return Reply(upstream.status, headers, chunks=relay_guarded(upstream, guard, done, context),
                 watch_disconnect=True)


async def _guarded_json(
    runtime: Runtime, upstream: aiohttp.ClientResponse, choice: RouteChoice, context: RequestContext,
    guard_context: GuardContext, restorer: Restorer,
) -> Reply:
    dialect = context.dialect
    assert dialect is not None
    try:
        raw = await upstream.read()
    except UPSTREAM_ERRORS as exc:
        return upstream_failure(exc, verdict_headers(context.verdict, choice.tag), context)
    finally:
        close_upstream(upstream)
    context.upstream_finished()
    output_started = time.perf_counter()
    headers = response_headers(upstream.raw_headers, decoded=True)
    try:
        payload = json_codec.loads(raw)
    except ValueError:
        payload = None
    if not isinstance(payload, dict):
        log.warning("upstream answered %d with a body that is not a JSON object; withheld", upstream.status)
        return dialect.error_reply(502, "The upstream's answer could not be checked: it is not a JSON object.",
                                   "upstream_error", "bad_upstream_answer",
                                   headers=verdict_headers(context.verdict, choice.tag))
    result = await _run_stage(runtime, context, choice, "output", dialect.response_segments(payload), guard_context)
    restorer.restore_result(result)
    rewrites = result.rewrites()
    blocked = {ALL_CHOICES if d.segment < 0 else dialect.choice_of(result.segments[d.segment])
               for d in result.blocking}
    if rewrites:
        apply_texts(payload, [(s, t) for s, t in rewrites if dialect.choice_of(s) not in blocked])
    if blocked:
        dialect.withhold(payload, blocked, result.message or "")
    annotated = {dialect.choice_of(result.segments[d.segment]) for d in result.decisions
                 if d.action == "annotate" and d.enforced and d.segment >= 0} - blocked
    if result.notes and annotated:
        dialect.annotate(payload, annotated, "\n\n" + "\n".join(result.notes))
    if rewrites or blocked or (result.notes and annotated):
        raw = json_codec.dumps(payload)
    context.add_output_time(time.perf_counter() - output_started)
    return Reply(upstream.status, headers + verdict_headers(context.verdict, choice.tag), raw)


def _relayed_unguarded(choice: RouteChoice, method: str, path: str) -> bool:
    policy = choice.policy
    return (method in _SAFE_METHODS or policy.unknown_paths == "pass"
            or any(fnmatch.fnmatchcase(path, glob) for glob in policy.passthrough))


async def passthrough(runtime: Runtime, ex: Exchange, context: RequestContext) -> Reply:
    """Any other path: relayed untouched, or refused."""
    try:
        choice = choose_route(runtime, context, None, dict(ex.headers) if runtime.policies.routes_on_headers
                              else _NO_HEADERS, ex.path, "passthrough")
    except ClientError as refused:
        return own_error(context, refused.status, refused.message, "api_error", refused.code)
    context.routed(choice, None)
    headers = verdict_headers("pass", choice.tag)
    if not _relayed_unguarded(choice, ex.method, ex.path):
        return own_error(context, 404, f"Invalid URL ({ex.method} {ex.path}): the proxy does not guard this path "
                         "and its policy does not list it in 'passthrough'.", "invalid_request_error",
                         "unknown_url", headers=headers)
    missing = unconfigured(runtime, context, headers)
    if missing is not None:
        return missing
    limit = runtime.settings.max_body_bytes
    if ex.declared_too_large(limit):
        exc = too_large(limit)
        return own_error(context, exc.status, exc.message, "invalid_request_error", exc.code, headers=headers)
    has_body = ex.method not in ("GET", "HEAD", "DELETE", "OPTIONS")
    try:
        upstream = answered(context, await upstream_request(runtime, ex, context,
                                                            ex.stream(limit) if has_body else None, reads_body=False))
    except ClientError as exc:  # the client's upload passed the limit while it was being relayed
        return own_error(context, exc.status, exc.message, "invalid_request_error", exc.code, headers=headers)
    except UPSTREAM_ERRORS as exc:
        cause = exc.__cause__ or exc.__context__
        if isinstance(cause, ClientError):
            return own_error(context, cause.status, cause.message, "invalid_request_error", cause.code,
                             headers=headers)
        return upstream_failure(exc, headers, context)
    return await relay_reply(upstream, headers, context, body_done=ex.body_done or not has_body)
