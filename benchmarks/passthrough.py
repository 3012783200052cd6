"""Section 1 and 2: pass-through throughput and latency, wrk against every target side by side.

Targets: the upstream called directly; the reference relay on aiohttp and on
httpx's API; guardproxy with a policy that has no guards; LiteLLM's proxy. Each
gets the same chat completion, non-streamed and streamed, at each concurrency.
Every target must first answer it with 200 and the upstream's text.
"""

from __future__ import annotations

import json
import statistics
from typing import Any

import litellm_incumbent
from chat_client import preflight
from interference import Interference
from loadgen import WrkRun, combine, run_wrk, write_script
from plan import Plan
from servers import REPO, Lab, Server

BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "What is the capital of France?"}]}
HEADERS = {"authorization": "Bearer sk-bench"}
NO_GUARDS = REPO / "benchmarks" / "policies" / "no_guards.yaml"
TARGETS = ("direct", "reference (aiohttp)", "reference (httpx API)", "guardproxy (no guards)", "LiteLLM")


def _targets(lab: Lab, notes: list[str], with_litellm: bool) -> dict[str, tuple[Server, dict[str, str]]]:
    upstream = lab.upstream()
    targets = {
        "direct": (upstream, HEADERS),
        "reference (aiohttp)": (lab.reference("aiohttp", upstream), HEADERS),
        "reference (httpx API)": (lab.reference("httpx", upstream), HEADERS),
        "guardproxy (no guards)": (lab.guardproxy("gp-none", NO_GUARDS, upstream), HEADERS),
    }
    if not with_litellm:
        notes.append("LiteLLM skipped (--no-litellm)")
        return targets
    problem = litellm_incumbent.ensure_installed()
    if problem:
        notes.append(f"LiteLLM rows skipped: {problem}")
        print(f"  {notes[-1]}", flush=True)
        return targets
    try:
        targets["LiteLLM"] = (litellm_incumbent.start(lab, upstream), litellm_incumbent.HEADERS)
    except (RuntimeError, OSError) as exc:
        notes.append(f"LiteLLM rows skipped: it did not start or answer: {exc}")
        print(f"  {notes[-1]}", flush=True)
    return targets


def run_section(lab: Lab, plan: Plan, with_litellm: bool = True) -> dict[str, Any]:
    """Every cell (mode, concurrency) runs in rounds that go through all the targets in turn, each
    round in another order, so that other work on the machine falls on every target alike."""
    notes: list[str] = []
    targets = _targets(lab, notes, with_litellm)
    for server, headers in targets.values():
        preflight(server.url + "/v1/chat/completions", headers)
    rows: list[dict[str, Any]] = []
    for stream in (False, True):
        body = json.dumps({**BODY, "stream": True} if stream else BODY)
        scripts = {name: write_script(lab.tmp / f"pass-{index}-{stream}.lua", headers, body)
                   for index, (name, (_, headers)) in enumerate(targets.items())}
        for name, (server, _) in targets.items():
            run_wrk(server.url + "/v1/chat/completions", scripts[name], max(plan.concurrencies), plan.warmup_seconds,
                    lab.cpu("load"))
        for concurrency in plan.concurrencies:
            runs: dict[str, list[WrkRun]] = {name: [] for name in targets}
            others: dict[str, list[float]] = {name: [] for name in targets}  # cores; runs under 1 s give none
            names = list(targets)
            for round_ in range(plan.rounds):
                for name in names[round_ % len(names):] + names[:round_ % len(names)]:
                    watch = Interference(lab)
                    runs[name].append(run_wrk(targets[name][0].url + "/v1/chat/completions", scripts[name],
                                              concurrency, plan.wrk_seconds, lab.cpu("load")))
                    cores = watch.cores()
                    if cores is not None:
                        others[name].append(cores)
            for name in names:
                rows.append({"target": name, "stream": stream, **combine(runs[name]),
                             "others_cores": statistics.median(others[name]) if others[name] else None})
                _print(rows[-1])
    for server, _ in targets.values():
        server.loaded_by.append("passthrough")
    litellm = lab.servers.get("litellm")
    memory = {}
    if litellm is not None:
        memory = {"litellm_rss_idle_mib": max(litellm.rss_idle_mib.values()),
                  "litellm_rss_after_mib": max(litellm.rss_mib().values())}
        lab.stop("litellm")
    return {"rows": rows, "derived": derive(rows), "notes": notes, "rounds": plan.rounds, **memory}


def _print(row: dict[str, Any]) -> None:
    flag = f"  ERRORS {row['errors']}" if row["error_count"] else ""
    print(f"  {row['target']:24} {'stream' if row['stream'] else 'json':6} c={row['concurrency']:<3} "
          f"{row['rps']:9.0f} req/s p50 {row['p50']:8.3f} ms  p99 {row['p99']:8.3f} ms  "
          f"others {row['others_cores'] if row['others_cores'] is None else round(row['others_cores'], 2)} cores"
          f"{flag}", flush=True)


def _cell(rows: list[dict[str, Any]], target: str, stream: bool, concurrency: int) -> dict[str, Any] | None:
    return next((r for r in rows if r["target"] == target and r["stream"] == stream
                 and r["concurrency"] == concurrency), None)


def derive(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per target and mode: added p50 at c=1 over direct, c=16 throughput against the reference
    (aiohttp) and LiteLLM, p99 at c=64 against the reference's."""
    derived = []
    for stream in (False, True):
        direct = _cell(rows, "direct", stream, 1)
        reference16 = _cell(rows, "reference (aiohttp)", stream, 16)
        reference64 = _cell(rows, "reference (aiohttp)", stream, 64)
        litellm16 = _cell(rows, "LiteLLM", stream, 16)
        for target in TARGETS:
            c1, c16, c64 = (_cell(rows, target, stream, c) for c in (1, 16, 64))
            if c1 is None:
                continue
            item: dict[str, Any] = {"target": target, "stream": stream}
            if direct is not None:
                item["added_p50_c1_ms"] = c1["p50"] - direct["p50"]
            if c16 is not None and reference16 is not None:
                item["c16_pct_of_reference"] = 100 * c16["rps"] / reference16["rps"]
            if c16 is not None and litellm16 is not None:
                item["c16_x_litellm"] = c16["rps"] / litellm16["rps"]
            if c64 is not None and reference64 is not None:
                item["p99_c64_x_reference"] = c64["p99"] / reference64["p99"]
            item["errors"] = sum(r["error_count"] for r in rows if r["target"] == target and r["stream"] == stream)
            derived.append(item)
    return derived
