"""What a decision looks like to the outside: block responses, withheld
choices, and the log line. None of them ever contains the text that fired."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any, Protocol

from starlette.responses import Response

from guardproxy.engine.core import ChainResult, Decision, GuardFailure, Verdict
from guardproxy.http.errors import error_body
from guardproxy.policy import RouteChoice

log = logging.getLogger("guardproxy.decision")


class Outcome(Protocol):
    verdict: Verdict
    decisions: list[Decision]
    failures: list[GuardFailure]


def violations(decisions: Sequence[Decision]) -> list[dict[str, Any]]:
    """Which guards fired with which labels, one entry per guard."""
    by_guard: dict[str, dict[str, Any]] = {}
    for d in decisions:
        entry = by_guard.setdefault(d.name, {"guard": d.guard, "name": d.name, "action": d.action, "labels": []})
        if d.label not in entry["labels"]:
            entry["labels"].append(d.label)
    return list(by_guard.values())


def blocked_input_response(choice: RouteChoice, result: ChainResult) -> Response:
    body = error_body(
        result.message or choice.policy.messages.input_blocked,
        "guardrail_violation",
        "policy_violation",
        None,
        guardrail={"policy": choice.tag, "chain": choice.chain_name, "stage": "input",
                   "violations": violations(result.blocking)},
    )
    headers = {"x-guardproxy-verdict": "blocked", "x-guardproxy-policy": choice.tag}
    return Response(json.dumps(body).encode(), 400, media_type="application/json", headers=headers)


def withhold_choices(payload: dict[str, Any], result: ChainResult, endpoint: str) -> None:
    """Replace each blocked choice's answer with the refusal message."""
    blocked_all = any(d.segment < 0 for d in result.blocking)
    blocked = {result.segments[d.segment].path[1] for d in result.blocking if d.segment >= 0}
    message = result.message or ""
    for index, choice in enumerate(payload.get("choices") or []):
        if not isinstance(choice, dict) or not (blocked_all or index in blocked):
            continue
        choice["finish_reason"] = "content_filter"
        if endpoint == "chat":
            answer: dict[str, Any] = choice["message"] if isinstance(choice.get("message"), dict) else {}
            answer.pop("tool_calls", None)
            answer.pop("function_call", None)
            answer["role"] = "assistant"
            answer["content"] = message
            choice["message"] = answer
        else:
            choice["text"] = message
        if "logprobs" in choice:
            choice["logprobs"] = None


def append_notes(payload: dict[str, Any], result: ChainResult, endpoint: str) -> None:
    """``annotate``: append the guards' notes after the answer of each choice they fired on."""
    fired = {result.segments[d.segment].path[1] for d in result.decisions
             if d.action == "annotate" and d.enforced and d.segment >= 0}
    suffix = "\n\n" + "\n".join(result.notes)
    for index, choice in enumerate(payload.get("choices") or []):
        if not isinstance(choice, dict) or index not in fired:
            continue
        holder = choice.get("message") if endpoint == "chat" else choice
        key = "content" if endpoint == "chat" else "text"
        if isinstance(holder, dict) and isinstance(holder.get(key), str):
            holder[key] += suffix


def log_decision(choice: RouteChoice, outcome: Outcome) -> None:
    if outcome.verdict == "pass" and not outcome.failures:
        return
    fired = ", ".join(f"{v['name']}:{'|'.join(v['labels'])}" for v in violations(outcome.decisions)) or "-"
    failed = ", ".join(f"{f.name}:{f.kind}" for f in outcome.failures) or "-"
    log.info("verdict=%s policy=%s chain=%s fired=%s failed=%s", outcome.verdict, choice.tag,
             choice.chain_name, fired, failed)
