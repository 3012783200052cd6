"""Who may call: client keys on the proxied routes, the admin key on admin endpoints.

With a keys file, every proxied request must carry a known key, and that key's
chain is the request's chain, whatever the routes say. The key is looked for
where each API's SDK sends it: ``Authorization: Bearer`` everywhere, and also
``x-api-key`` on Anthropic's paths and ``api-key`` on Azure's. It never goes
upstream (``upstream.request_headers`` drops every client key header).

Admin endpoints (``/v1/guardrails/check``, and ``/metrics`` when it is served on
the public port) take the admin key when one is set: 401 without it, 403 with a
client key. Without an admin key but with a keys file, they take any client key.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping, Sequence

from guardproxy.policy import RouteChoice
from guardproxy.proxy.context import RequestContext
from guardproxy.proxy.errors import ClientError, error_reply
from guardproxy.proxy.reply import RawHeaders, Reply
from guardproxy.proxy.runtime import Runtime

_OWN_KEY_HEADER = {"anthropic": "x-api-key", "azure": "api-key"}


def presented_key(headers: Sequence[tuple[str, str]], upstream: str) -> str | None:
    """The key a client sent: its API's own header first, then ``Authorization: Bearer``."""
    own = _OWN_KEY_HEADER.get(upstream)
    bearer = None
    for name, value in headers:
        if own is not None and name == own and value:
            return value.strip()
        if name == "authorization" and bearer is None:
            scheme, _, token = value.strip().partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                bearer = token.strip()
    return bearer


def admin_denied(runtime: Runtime, headers: Sequence[tuple[str, str]]) -> tuple[int, str] | None:
    """Whether an admin endpoint refuses this request: (status, message), or None to admit it."""
    key = presented_key(headers, "openai")
    if runtime.admin_key is not None:
        if key is not None and hmac.compare_digest(key.encode(), runtime.admin_key.encode()):
            return None
        if key is not None and runtime.client_keys is not None and runtime.client_keys.find(key) is not None:
            return 403, "This endpoint takes the proxy's admin key; a client key is not enough."
        return 401, "This endpoint requires the proxy's admin key as 'Authorization: Bearer ...'."
    if runtime.client_keys is not None and runtime.client_keys.find(key) is None:
        return 401, "Incorrect or missing API key: the proxy requires one of its client keys."
    return None


def admin_refusal(denied: tuple[int, str], headers: RawHeaders | None = None) -> Reply:
    status, message = denied
    code = "invalid_api_key" if status == 401 else "admin_key_required"
    type_ = "invalid_request_error" if status == 401 else "permission_error"
    return error_reply(status, message, type_, code, headers=headers)


def authenticate(runtime: Runtime, headers: Sequence[tuple[str, str]], upstream: str,
                 context: RequestContext) -> ClientError | None:
    """Note the client's key on the context; a 401 if keys are configured and it is missing or unknown."""
    keys = runtime.client_keys
    if keys is None:
        return None
    entry = keys.find(presented_key(headers, upstream))
    if entry is None:
        return ClientError(401, "Incorrect or missing API key: the proxy requires one of its client keys "
                           "(Authorization: Bearer ...).", "invalid_api_key")
    context.client_key = entry
    context.report.client_key = entry.name
    return None


def choose_route(runtime: Runtime, context: RequestContext, model: str | None, headers: Mapping[str, str],
                 path: str, api: str) -> RouteChoice:
    """The request's policy and chain: its key's when it has one, else the first route that matches.
    ClientError: the key may not call this model (403), or its chain is not loaded (503, fail closed)."""
    policies = runtime.policies
    entry = context.client_key
    if entry is None:
        return policies.select(model, headers, path, api)
    choice = policies.pinned(entry.policy, entry.chain)
    if choice is None:
        raise ClientError(503, f"The chain of the key {entry.name!r} is not loaded; the request was not sent.",
                          "chain_unavailable")
    if api != "passthrough" and not entry.allows_model(model):
        context.routed(choice, model)
        raise ClientError(403, f"The key {entry.name!r} may not call the model {model!r}.", "model_not_allowed",
                          "model")
    return choice
