"""What guarding each API adds: chat, Responses, Anthropic Messages and Azure chat, JSON and streamed.

For every API and mode, three targets answer the same request one at a time (c=1): the demo upstream
(``python -m guardproxy.demo``) called directly, guardproxy with no guards
(``benchmarks/policies/no_guards.yaml``) and guardproxy with the shipped default policy
(``policies/default.yaml``), both in front of that upstream. The added latency of a proxy is its p50 (p95)
minus the direct p50 (p95) of the same API and mode. All APIs, modes and targets are interleaved in one
run, each iteration in a new random order, so that other work on the machine falls on all of them alike.

Each iteration makes a new ~200-character prompt and a new answer of the cell's length (``prose.py``), and
the demo is told to answer it with ``x-demo-reply``. Every request prefixes both with its own ticket
number: guards cache findings by text, and the APIs must not hit each other's cache, while the texts stay
the same for every API (so API-to-API differences are not differences of text). Streams are timed to the
first SSE event that carries answer text and to the last byte; a JSON answer to the last byte.

"new API minus chat" is each API's added p50 less chat's, with a 95 % bootstrap interval over iterations
(iterations are resampled whole, so the pairing of APIs within an iteration is kept).

    .venv/bin/python benchmarks/api_overhead.py --requests 300 --out benchmarks/results/api_overhead.json
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import uvloop
from chat_client import percentile
from interference import Interference
from processes import free_port
from prose import Prose
from servers import GUARDPROXY, LOAD_CPU, PYTHON, REPO, Lab, Server, pinned

POLICIES = {"none": "benchmarks/policies/no_guards.yaml", "default": "policies/default.yaml"}
TARGETS = ("direct", "none", "default")
AZURE_DEPLOYMENT = "gpt-4o-mini"
PROMPT_CHARS = 200


def _chat_text(event: dict[str, Any]) -> str:
    return "".join((choice.get("delta") or {}).get("content") or "" for choice in event.get("choices") or ())


def _responses_text(event: dict[str, Any]) -> str:
    return str(event.get("delta") or "") if event.get("type") == "response.output_text.delta" else ""


def _messages_text(event: dict[str, Any]) -> str:
    delta = event.get("delta") or {}
    return str(delta.get("text") or "") if event.get("type") == "content_block_delta" else ""


def _json_chat_text(answer: dict[str, Any]) -> str:
    return "".join((choice.get("message") or {}).get("content") or "" for choice in answer.get("choices") or ())


def _json_responses_text(answer: dict[str, Any]) -> str:
    return "".join(part.get("text", "") for item in answer.get("output") or () for part in item.get("content") or ())


def _json_messages_text(answer: dict[str, Any]) -> str:
    return "".join(block.get("text", "") for block in answer.get("content") or ())


@dataclass(frozen=True)
class Api:
    """One API as a client calls it: path, key header, body, and where its answer text is."""

    name: str  # also the proxy's x-guardproxy-api value
    path: str
    headers: dict[str, str]
    body: Callable[[str, bool], dict[str, Any]]
    event_text: Callable[[dict[str, Any]], str]
    answer_text: Callable[[dict[str, Any]], str]


def _chat_body(prompt: str, stream: bool) -> dict[str, Any]:
    return {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": prompt}], "stream": stream}


APIS = (
    Api("chat", "/v1/chat/completions", {"authorization": "Bearer sk-bench"}, _chat_body, _chat_text,
        _json_chat_text),
    Api("responses", "/v1/responses", {"authorization": "Bearer sk-bench"},
        lambda prompt, stream: {"model": "gpt-4o-mini", "input": prompt, "stream": stream},
        _responses_text, _json_responses_text),
    Api("messages", "/v1/messages", {"x-api-key": "sk-bench", "anthropic-version": "2023-06-01"},
        lambda prompt, stream: {"model": "claude-sonnet-4-5", "max_tokens": 1024, "stream": stream,
                                "messages": [{"role": "user", "content": prompt}]},
        _messages_text, _json_messages_text),
    Api("azure_chat", f"/openai/deployments/{AZURE_DEPLOYMENT}/chat/completions?api-version=2024-10-21",
        {"api-key": "sk-bench"},
        lambda prompt, stream: {"messages": [{"role": "user", "content": prompt}], "stream": stream},
        _chat_text, _json_chat_text),
)


@dataclass
class Sample:
    status: int
    last_ms: float
    first_ms: float | None  # streams: the first event with answer text
    text: str  # the answer text (preflight only; empty while measuring)
    headers: dict[str, str]


async def call(session: aiohttp.ClientSession, url: str, api: Api, body: bytes, reply: str, stream: bool,
               keep_text: bool = False) -> Sample:
    """One request, timed from just before it is sent. Stream lines are parsed only until the first
    answer text (and all of them when ``keep_text``), so the client's work after it stays small."""
    headers = {**api.headers, "content-type": "application/json", "x-demo-reply": reply}
    first: float | None = None
    texts: list[str] = []
    raw = b""
    started = time.perf_counter()
    async with session.post(url, data=body, headers=headers) as response:
        if stream:
            async for line in response.content:
                if (first is None or keep_text) and line.startswith(b"data: {"):
                    text = api.event_text(json.loads(line[6:]))
                    if text and first is None:
                        first = (time.perf_counter() - started) * 1000
                    texts.append(text)
        else:
            raw = await response.read()
        last = (time.perf_counter() - started) * 1000
        status = response.status
        answer = {k.lower(): v for k, v in response.headers.items()}
    if keep_text and not stream:
        texts.append(api.answer_text(json.loads(raw)) if status == 200 else raw.decode(errors="replace"))
    return Sample(status, last, first, "".join(texts), answer)


def start_servers(lab: Lab) -> dict[str, Server]:
    port = free_port()
    demo = lab.launch("demo", pinned(lab.cpu("load"), [PYTHON, "-m", "guardproxy.demo", "--port", str(port)]),
                      "/v1/models", port, timeout=60)
    servers = {"direct": demo}
    for key, policy in POLICIES.items():
        port = free_port()
        command = [GUARDPROXY, "serve", "--upstream", demo.url + "/v1", "--azure-upstream", demo.url,
                   "--policy", policy, "--port", str(port)]
        servers[key] = lab.launch(key, pinned(lab.cpu("proxy"), command), "/readyz", port)
    return servers


async def preflight(sessions: dict[str, aiohttp.ClientSession], servers: dict[str, Server],
                    apis: tuple[Api, ...]) -> None:
    """Every target must answer every API and mode with 200 and the demo's reply, and each proxy must
    have routed it as that API under the expected policy: a fast error must not pass for a fast answer."""
    reply = "Paris is the capital of France, and it sits on the Seine."
    for target, server in servers.items():
        for api in apis:
            for stream in (False, True):
                body = json.dumps(api.body("What is the capital of France?", stream)).encode()
                sample = await call(sessions[target], server.url + api.path, api, body, reply, stream, True)
                problem = None
                if sample.status != 200 or sample.text != reply:
                    problem = f"answered {sample.status}: {sample.text[:200]!r}"
                elif target != "direct" and sample.headers.get("x-guardproxy-api") != api.name:
                    problem = f"x-guardproxy-api {sample.headers.get('x-guardproxy-api')!r}"
                elif target != "direct" and not sample.headers.get("x-guardproxy-policy", "").startswith(
                        f"{target}@"):
                    problem = f"policy {sample.headers.get('x-guardproxy-policy')!r}"
                if problem:
                    raise RuntimeError(f"{target} {api.name} {'stream' if stream else 'json'}: {problem}")


Cell = tuple[str, str, str]  # api, mode, target


async def measure(servers: dict[str, Server], apis: tuple[Api, ...], answer_chars: int, requests: int, warm: int,
                  seed: int) -> tuple[dict[Cell, list[Sample]], int]:
    """``warm + requests`` iterations; in each, every (API, mode, target) once, in a new random order.
    Returns the samples after the warm-up (index i is iteration i in every cell) and the failures."""
    prose, order_rng = Prose(seed), random.Random(seed + 1)
    cells = [(api, mode, target) for api in apis for mode in ("json", "stream") for target in TARGETS]
    samples: dict[Cell, list[Sample]] = {(api.name, mode, target): [] for api, mode, target in cells}
    failures = 0
    ticket = 0
    sessions = {t: aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1), auto_decompress=False)
                for t in TARGETS}
    try:
        await preflight(sessions, servers, apis)
        for iteration in range(warm + requests):
            prompt, answer = prose.text(PROMPT_CHARS), prose.text(answer_chars)
            order_rng.shuffle(cells)
            for api, mode, target in cells:
                ticket += 1
                stream = mode == "stream"
                body = json.dumps(api.body(f"Ticket {ticket}. {prompt}", stream)).encode()
                sample = await call(sessions[target], servers[target].url + api.path, api, body,
                                    f"Ticket {ticket}. {answer}", stream)
                failures += sample.status != 200
                if iteration >= warm:
                    samples[(api.name, mode, target)].append(sample)
    finally:
        for session in sessions.values():
            await session.close()
    return samples, failures


def _added(samples: dict[Cell, list[Sample]], api: str, mode: str, target: str, rows: list[int] | None = None,
           q: float = 0.5, first: bool = False) -> float:
    def values(who: str) -> list[float]:
        chosen = samples[(api, mode, who)] if rows is None else [samples[(api, mode, who)][i] for i in rows]
        return [(s.first_ms or float("nan")) if first else s.last_ms for s in chosen]

    if q == 0.5:
        return statistics.median(values(target)) - statistics.median(values("direct"))
    return percentile(values(target), q) - percentile(values("direct"), q)


def summarise(samples: dict[Cell, list[Sample]], apis: tuple[Api, ...], resamples: int, seed: int) -> dict[str, Any]:
    """Per (API, mode, target): p50/p95 and added p50/p95, to the last byte and (streams) to the first
    text; per new API: added p50 minus chat's, with a bootstrap interval."""
    n = len(samples[(apis[0].name, "json", "direct")])
    with_chat = any(api.name == "chat" for api in apis)
    rng = random.Random(seed)
    draws = [[rng.randrange(n) for _ in range(n)] for _ in range(resamples)]
    rows: dict[str, Any] = {}
    for api in apis:
        for mode in ("json", "stream"):
            for target in TARGETS:
                cell = samples[(api.name, mode, target)]
                last = [s.last_ms for s in cell]
                row = {"n": len(cell), "p50": statistics.median(last), "p95": percentile(last, 0.95)}
                if mode == "stream":
                    first = [s.first_ms for s in cell if s.first_ms is not None]
                    row |= {"first_p50": statistics.median(first), "first_p95": percentile(first, 0.95),
                            "no_text": len(cell) - len(first)}
                if target != "direct":
                    row |= {"added_p50": _added(samples, api.name, mode, target),
                            "added_p95": _added(samples, api.name, mode, target, q=0.95)}
                    if mode == "stream":
                        row |= {"first_added_p50": _added(samples, api.name, mode, target, first=True),
                                "first_added_p95": _added(samples, api.name, mode, target, q=0.95, first=True)}
                    if with_chat and api.name != "chat":
                        row["vs_chat"] = _versus_chat(samples, api.name, mode, target, draws)
                rows[f"{api.name}/{mode}/{target}"] = row
    return rows


def _versus_chat(samples: dict[Cell, list[Sample]], api: str, mode: str, target: str, draws: list[list[int]]
                 ) -> dict[str, float]:
    kinds = [("last", False)] + ([("first", True)] if mode == "stream" else [])
    out: dict[str, float] = {}
    for kind, first in kinds:
        point = (_added(samples, api, mode, target, first=first)
                 - _added(samples, "chat", mode, target, first=first))
        spread = sorted(_added(samples, api, mode, target, rows, first=first)
                        - _added(samples, "chat", mode, target, rows, first=first) for rows in draws)
        out |= {f"{kind}_p50_minus_chat": point, f"{kind}_low95": spread[int(0.025 * len(spread))],
                f"{kind}_high95": spread[int(0.975 * len(spread)) - 1]}
    return out


def _versus(row: dict[str, Any], kind: str) -> str:
    vs = row.get("vs_chat")
    if not vs:
        return "–"
    return f"{vs[kind + '_p50_minus_chat']:+.2f} ({vs[kind + '_low95']:+.2f} to {vs[kind + '_high95']:+.2f})"


def print_tables(results: dict[str, Any]) -> None:
    for chars, block in results["answers"].items():
        print(f"\n### answer {int(chars):,} characters ({block['requests']} iterations, "
              f"others {block['others_cores']:.2f} cores, {block['failures']} failures)\n")
        print("| API | mode | direct p50 | no guards: added p50 / p95 | minus chat (95 % interval) "
              "| default policy: added p50 / p95 | minus chat (95 % interval) |")
        print("|---|---|---|---|---|---|---|")
        for api in (api for api in APIS if f"{api.name}/json/direct" in block["rows"]):
            for mode in ("json", "stream"):
                direct, none, default = (block["rows"][f"{api.name}/{mode}/{t}"] for t in TARGETS)
                kinds = [("last", "")] + ([("first", "first_")] if mode == "stream" else [])
                for kind, pre in kinds:
                    label = {"json": "JSON", "stream": "stream, last byte"}[mode] if kind == "last" else \
                        "stream, first text"
                    print(f"| {api.name} | {label} | {direct[pre + 'p50']:.2f} "
                          f"| {none[pre + 'added_p50']:.2f} / {none[pre + 'added_p95']:.2f} | {_versus(none, kind)} "
                          f"| {default[pre + 'added_p50']:.2f} / {default[pre + 'added_p95']:.2f} "
                          f"| {_versus(default, kind)} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=300, help="iterations per answer length")
    parser.add_argument("--warm", type=int, default=5, help="iterations thrown away first")
    parser.add_argument("--apis", default=",".join(api.name for api in APIS), help="APIs to measure")
    parser.add_argument("--answers", default="200,2000", help="answer lengths in characters")
    parser.add_argument("--resamples", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=20261203)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "api_overhead.json")
    args = parser.parse_args()
    apis = tuple(api for api in APIS if api.name in args.apis.split(","))
    os.sched_setaffinity(0, {int(LOAD_CPU)})  # the client with the upstream; the proxies on the other CPU
    lab = Lab(pin=True)
    started = time.time()
    results: dict[str, Any] = {"started": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started)),
                               "load_average_start": os.getloadavg(), "prompt_chars": PROMPT_CHARS,
                               "answers": {}}
    try:
        servers = start_servers(lab)
        results["commands"] = lab.commands()
        for chars in (int(c) for c in args.answers.split(",")):
            watch = Interference(lab)
            samples, failures = uvloop.run(measure(servers, apis, chars, args.requests, args.warm, args.seed + chars))
            others = watch.cores()
            print(f"answer {chars}: {args.requests} iterations, {failures} failures, others {others} cores",
                  flush=True)
            results["answers"][str(chars)] = {
                "requests": args.requests, "failures": failures, "others_cores": others,
                "rows": summarise(samples, apis, args.resamples, args.seed),
                "raw": {"/".join(k): [[round(s.last_ms, 3), s.first_ms and round(s.first_ms, 3), s.status]
                                      for s in v] for k, v in samples.items()},
            }
    finally:
        lab.close()
    results["minutes"] = (time.time() - started) / 60
    results["load_average_end"] = os.getloadavg()
    args.out.write_text(json.dumps(results, separators=(",", ":")))
    print_tables(results)


if __name__ == "__main__":
    main()
