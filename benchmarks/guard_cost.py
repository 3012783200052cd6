"""Section 4: what the full policy's guards add to a request, and to a growing conversation.

guardproxy with ``benchmarks/policies/full.yaml`` and with no guards, both
pinned to the same CPU in turn, get the same new prompts one at a time; the
added latency is the difference of the two. Requests to the two alternate, so
noise from the rest of the machine falls on both alike.

The conversation resends its whole history every turn, as chat clients do: a
new ~200-character user message plus the assistant's previous answers (each a
new text, as a model's would be). Cached guards see only the two new messages,
so turn 20 should cost what turn 1 does plus one new message.
"""

from __future__ import annotations

import statistics
from typing import Any

from chat_client import Client, Timings, chat_body, run, user_body
from plan import Plan
from prose import Prose
from servers import REPO, Lab, Server

POLICIES = REPO / "benchmarks" / "policies"
WARMUP = 2


def proxies(lab: Lab) -> tuple[Server, Server, Server]:
    """guardproxy with no guards, with the full policy, and with the full policy matching topics by
    keywords instead of embeddings, on the fast upstream (shared with other sections)."""
    upstream = lab.upstream()
    return (lab.guardproxy("gp-none", POLICIES / "no_guards.yaml", upstream),
            lab.guardproxy("gp-full", POLICIES / "full.yaml", upstream),
            lab.guardproxy("gp-full-kw", POLICIES / "full_keyword_topics.yaml", upstream))


async def paired(client: Client, none: str, full: str, bodies: list[bytes],
                 warmup: int = WARMUP) -> tuple[Timings, Timings]:
    """Each body once to each proxy, alternating; the first ``warmup`` are not counted. Gives up
    when the full policy's timings are ``hopeless``."""
    timings = (Timings(), Timings())
    for index, body in enumerate(bodies):
        for url, timing in ((none, timings[0]), (full, timings[1])):
            ms, status = await client.post(url, body)
            if index >= warmup:
                timing.add(ms, status)
        if timings[1].hopeless():
            timings[1].gave_up = True
            break
    return timings


def progress(row: dict[str, Any]) -> str:
    """One line for the console."""
    failed = row["failed"]
    return (f"added p50 {row['added_p50']:8.2f} ms, p95 {row['added_p95']:8.2f} ms (no guards p50 "
            f"{row['none_p50']:.2f} ms), {row['requests']} requests" + (f", {failed} failed" if failed else "")
            + (", gave up" if row["gave_up"] else "") + (f"; busy {row['busy_after_s']:.0f} s after"
                                                         if row["busy_after_s"] > 1 else ""))


def added(none: Timings, full: Timings) -> dict[str, Any]:
    return {"none_p50": none.p50(), "full_p50": full.p50(), "added_p50": full.p50() - none.p50(),
            "none_p95": none.p95(), "full_p95": full.p95(), "added_p95": full.p95() - none.p95(),
            "requests": len(full.ms), "failures": {"none": none.failures, "full": full.failures},
            "failed": full.failed(), "gave_up": full.gave_up}


async def _sizes(client: Client, urls: tuple[str, str], full: Server, plan: Plan,
                 prose: Prose, limit: int | None = None) -> list[dict[str, Any]]:
    rows = []
    for chars, count in plan.guard_requests.items():
        if limit is not None and chars > limit:
            continue
        bodies = [user_body(prose.text(chars)) for _ in range(WARMUP + count)]
        rows.append({"chars": chars, **added(*await paired(client, *urls, bodies)), "busy_after_s": full.settle()})
        print(f"  {chars:6}-char prompts: {progress(rows[-1])}", flush=True)
    return rows


async def _conversations(client: Client, none: str, full: str, plan: Plan,
                         prose: Prose) -> list[list[tuple[Timings, Timings]]]:
    """Per conversation, per turn: the timings of no guards and of the full policy."""
    await paired(client, none, full, [user_body(prose.text(200)) for _ in range(WARMUP)])
    series = []
    for _ in range(plan.conversations):
        messages: list[dict[str, str]] = []
        turns = []
        for _turn in range(plan.turns):
            if messages:
                messages.append({"role": "assistant", "content": prose.text(190)})
            messages.append({"role": "user", "content": prose.text(200)})
            bare, guarded = await paired(client, none, full, [chat_body(messages)], warmup=0)
            turns.append((bare, guarded))
        series.append(turns)
    return series


def run_section(lab: Lab, plan: Plan) -> dict[str, Any]:
    servers = proxies(lab)
    none, full, keyword_topics = (server.url + "/v1/chat/completions" for server in servers)
    prose = Prose(plan.seed + 4)
    sizes = run(lambda client: _sizes(client, (none, full), servers[1], plan, prose))
    print("  full policy, topics by keywords:", flush=True)
    keyword_sizes = run(lambda client: _sizes(client, (none, keyword_topics), servers[2], plan, prose, limit=2_000))
    series = run(lambda client: _conversations(client, none, full, plan, prose))
    per_turn = [statistics.median(guarded.ms[0] - bare.ms[0] for bare, guarded in turn)
                for turn in zip(*series, strict=True)]
    failures = sum(sum(t.failures.values()) for turns in series for pair in turns for t in pair)
    print(f"  conversation: turn 1 +{per_turn[0]:.2f} ms, turn {plan.turns} +{per_turn[-1]:.2f} ms, "
          f"{failures} failures", flush=True)
    for key in ("gp-none", "gp-full", "gp-full-kw"):
        lab.servers[key].loaded_by.append("guards")
    return {"sizes": sizes, "sizes_keyword_topics": keyword_sizes,
            "conversation": {"conversations": plan.conversations, "turns": plan.turns,
                             "added_per_turn_ms": per_turn, "turn_1": per_turn[0],
                             "turn_last": per_turn[-1], "growth": per_turn[-1] - per_turn[0],
                             "failures": failures}}
