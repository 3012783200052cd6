"""``POST /v1/guardrails/check``: run a chain on a text without calling the upstream.

For applications that want the guards as a service, and for evaluation.
Offsets in the findings index the text as submitted.
"""

from __future__ import annotations

import time
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from guardproxy.engine import ChainResult, Engine
from guardproxy.guards import GuardContext, Segment, UpstreamClient
from guardproxy.http.runtime import Runtime
from guardproxy.policy import RouteChoice
from guardproxy.policy.schema import Policy
from guardproxy.proxy.context import RequestContext
from guardproxy.proxy.errors import ClientError
from guardproxy.proxy.exchange import Exchange
from guardproxy.proxy.reply import Reply, verdict_headers


class CheckRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str
    stage: Literal["input", "output"] = "input"
    context: list[str] = []
    chain: str = "default"
    policy: str | None = None


def findings_json(result: ChainResult) -> list[dict[str, Any]]:
    return [
        {"guard": d.guard, "name": d.name, "label": d.label, "score": round(d.score, 4),
         "start": d.start, "end": d.end, "action": d.action, "mode": d.mode}
        for d in result.decisions
    ]


async def run_check(
    engine: Engine, policy: Policy, check: CheckRequest, upstream: UpstreamClient | None = None
) -> ChainResult:
    chain = policy.chains[check.chain]
    entries = chain.input if check.stage == "input" else chain.output
    role = "user" if check.stage == "input" else "assistant"
    context = GuardContext(check.stage, "check", None, tuple(check.context), upstream=upstream)
    return await engine.run(policy, entries, [Segment(check.text, ("text",), role)], context)


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
