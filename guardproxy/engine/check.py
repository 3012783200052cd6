"""Running one chain on one text, outside any API: the check endpoint, ``guardproxy test``
and anything else that wants the guards as a service use this, without the HTTP stack."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from guardproxy.engine.core import ChainResult, Engine
from guardproxy.guards import GuardContext, Segment, UpstreamClient
from guardproxy.policy.schema import Policy


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
         "start": d.start, "end": d.end, "action": d.action, "mode": d.mode,
         **({} if d.document is None else {"document": d.document})}
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
