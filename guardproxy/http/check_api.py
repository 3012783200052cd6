"""``POST /v1/guardrails/check``: run a chain on a text without calling the upstream.

For applications that want the guards as a service, and for evaluation.
Offsets in the findings index the text as submitted.
"""

from __future__ import annotations

import time
from typing import Any

from pydantic import ValidationError

from guardproxy.engine.check import CheckRequest, findings_json, run_check
from guardproxy.policy import RouteChoice
from guardproxy.proxy.context import RequestContext
from guardproxy.proxy.errors import ClientError
from guardproxy.proxy.exchange import Exchange
from guardproxy.proxy.reply import Reply, verdict_headers
from guardproxy.proxy.runtime import Runtime


async def guardrails_check(runtime: Runtime, ex: Exchange, context: RequestContext) -> Reply:
    try:
        body = await ex.read_body(runtime.settings.max_body_bytes)
        try:
            check = CheckRequest.model_validate_json(body)
        except ValidationError as exc:
            first = exc.errors()[0]
            param = ".".join(str(p) for p in first["loc"]) or None
            raise ClientError(400, f"Invalid check request: {param or 'body'}: {first['msg']}",
                              "invalid_request", param) from None
        policy = runtime.policies.get(check.policy)
        if policy is None:
            raise ClientError(404, f"No policy named {check.policy!r} is loaded.", "policy_not_found", "policy")
        if check.chain not in policy.chains:
            raise ClientError(404, f"Policy {policy.name!r} has no chain named {check.chain!r}.",
                              "chain_not_found", "chain")
    except ClientError as exc:
        return exc.reply()
    started_ns = time.time_ns()
    result = await run_check(runtime.engine, policy, check,
                             runtime.guard_upstream(ex.header("authorization")))
    tag = runtime.policies.tag(policy)
    context.routed(RouteChoice(policy, check.chain, tag), None)
    context.chain_ran(result, started_ns)
    context.stage_done(check.stage, result)
    text = check.text if result.verdict == "blocked" else result.texts[0]
    body_out: dict[str, Any] = {"verdict": result.verdict, "text": text, "policy": tag, "chain": check.chain,
                "findings": findings_json(result),
                "errors": [{"name": f.name, "kind": f.kind} for f in result.failures]}
    if result.verdict == "blocked":
        body_out["message"] = result.message
    return Reply.json(200, body_out, verdict_headers(result.verdict, tag))
