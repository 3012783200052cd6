"""Load and soak: the shipped default policy under a fixed arrival rate for a fixed time.

The demo upstream (``python -m guardproxy.demo``) and ``guardproxy serve --policy policies`` run as their own
processes on loopback (upstream and this client on CPU 0, the proxy on CPU 1). Requests arrive at a fixed rate
whatever the answers do (open loop), at most ``--concurrency`` at once (a request due while that many are out
is counted as skipped, not sent later) and at most ``--max-requests`` in all. The mix (``soak_traffic.py``):
chat, Responses, Anthropic Messages and Azure chat, JSON and streamed; clean requests, personal data in the
input (redacted, then restored in the answer), injection phrases (blocked), answers the output guards redact or
withhold mid-stream, and clients that leave mid-stream. Every answer is judged; anything unexpected is an error
of a named kind.

Phases: warm-up traffic, then idle (``--settle`` seconds and until the proxy's CPU is quiet), the baseline
reading of the proxy's RSS, open fds and threads; then the measured traffic, idle again, the end reading.
Both readings are taken idle with this client's connections closed, so the end is compared like with like.

It exits 1 when a criterion fails: any 5xx, RSS more than 10 % above the baseline, fds or threads above
the baseline, or any request that was not answered as the policy requires.

    .venv/bin/python benchmarks/soak.py --duration 600     # 10 minutes at 20 req/s, after 60 s of warm-up
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import signal
import statistics
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import soak_probe
import uvloop
from chat_client import percentile
from interference import Interference
from machine import describe
from processes import free_port
from servers import GUARDPROXY, LOAD_CPU, PYTHON, REPO, Lab, Server, pinned
from soak_traffic import Outcome, Planner, send

RSS_GROWTH_LIMIT = 0.10


@dataclass
class Phase:
    """One stretch of traffic: what was sent, what came back, how late the sender was."""

    name: str
    outcomes: list[Outcome] = field(default_factory=list)
    sent: int = 0
    skipped: int = 0  # due while --concurrency requests were out
    max_lag_ms: float = 0.0
    in_flight: int = 0


async def drive(url: str, planner: Planner, phase: Phase, rate: float, seconds: float, cap: int, budget: int,
                started: float) -> None:
    """Send a request every 1/rate s for ``seconds``, then wait for the last answers and close the connections."""
    tasks: set[asyncio.Task[Outcome]] = set()
    connector = aiohttp.TCPConnector(limit=cap, limit_per_host=cap)
    session = aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=None))

    def done(task: asyncio.Task[Outcome]) -> None:
        tasks.discard(task)
        phase.in_flight -= 1
        phase.outcomes.append(task.result())

    try:
        begin = time.monotonic()
        for n in range(budget):
            due = begin + n / rate
            if due - begin >= seconds:
                break
            plan = planner.next()
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            phase.max_lag_ms = max(phase.max_lag_ms, (time.monotonic() - due) * 1000)
            if phase.in_flight >= cap:
                phase.skipped += 1
                continue
            phase.sent += 1
            phase.in_flight += 1
            task = asyncio.create_task(send(session, url, plan, started))
            tasks.add(task)
            task.add_done_callback(done)
        if tasks:
            await asyncio.wait(set(tasks))
    finally:
        await session.close()


async def sample_every(probe: soak_probe.Probe, every: float, started: float, phases: list[Phase],
                       timeline: list[dict[str, Any]]) -> None:
    while True:
        try:
            reading = probe.reading()
        except OSError:  # the proxy is gone: its requests fail and say so, and the end reading raises
            timeline.append({"t": round(time.monotonic() - started, 1), "proxy": "gone"})
            return
        phase = phases[-1] if phases else None
        timeline.append({"t": round(time.monotonic() - started, 1), "phase": phase.name if phase else "start",
                         "in_flight": phase.in_flight if phase else 0, **reading.brief()})
        await asyncio.sleep(every)


async def idle_reading(probe: soak_probe.Probe, server: Server, settle: float, signal_launcher: bool
                       ) -> dict[str, Any]:
    """The proxy at rest: ``settle`` seconds after the last answer, and its CPU quiet. A ``--launcher``
    wrapper is told of the reading with SIGUSR1 (after it), so that its own diagnostics line up."""
    await asyncio.sleep(settle)
    waited = await asyncio.to_thread(server.settle, 60)
    reading = probe.reading()
    if signal_launcher:
        os.kill(server.process.pid, signal.SIGUSR1)
    return {**reading.full(), "settled_s": round(settle + waited, 1)}


async def soak(args: argparse.Namespace, proxy: Server, probe: soak_probe.Probe, lab: Lab) -> dict[str, Any]:
    planner = Planner(args.seed)
    started = time.monotonic()
    phases: list[Phase] = []
    timeline: list[dict[str, Any]] = []
    sampler = asyncio.create_task(sample_every(probe, args.sample_every, started, phases, timeline))
    budget = args.max_requests
    results: dict[str, Any] = {"start": probe.reading().full()}
    try:
        for name, seconds in (("warmup", args.warmup), ("measured", args.duration)):
            phase = Phase(name)
            phases.append(phase)
            watch = Interference(lab)
            log_from = probe.log_offset()
            phase_started = time.monotonic()
            await drive(proxy.url, planner, phase, args.rate, seconds, args.concurrency, budget, started)
            budget -= phase.sent + phase.skipped
            traffic_s = time.monotonic() - phase_started
            results[name] = {"seconds": round(traffic_s, 1), "others_cores": watch.cores(), **summarise(phase)}
            results[name]["idle"] = await idle_reading(probe, proxy, args.settle, args.launcher is not None)
            results[name]["proxy_log"] = probe.log_summary(log_from)  # after the idle: every access line is out
            print_phase(name, results[name])
    finally:
        sampler.cancel()
    results["timeline"] = timeline
    results["rss_trend"] = rss_trend(timeline)
    return results


def rss_trend(timeline: list[dict[str, Any]]) -> dict[str, Any]:
    """RSS growth over the second half of the measured traffic, in MiB per minute (least squares over the
    timeline, loaded readings): bounded caches fill early, so a slope that stays up late points to a leak."""
    measured = [row for row in timeline if row.get("phase") == "measured"]
    late = measured[len(measured) // 2:]
    if len(late) < 3:
        return {"n": len(late)}
    mean_t, mean_r = statistics.fmean(r["t"] for r in late), statistics.fmean(r["rss_mib"] for r in late)
    spread = sum((r["t"] - mean_t) ** 2 for r in late)
    slope = sum((r["t"] - mean_t) * (r["rss_mib"] - mean_r) for r in late) / spread if spread else 0.0
    return {"n": len(late), "from_s": late[0]["t"], "to_s": late[-1]["t"], "mib_per_minute": round(slope * 60, 3)}


def _latency(ms: list[float]) -> dict[str, float | int]:
    if not ms:
        return {"n": 0}
    return {"n": len(ms), "p50": round(statistics.median(ms), 2), "p99": round(percentile(ms, 0.99), 2),
            "max": round(max(ms), 2)}


def summarise(phase: Phase) -> dict[str, Any]:
    outcomes = phase.outcomes
    statuses: dict[str, int] = {}
    errors: dict[str, int] = {}
    examples: dict[str, list[str]] = {}
    for o in outcomes:
        key = str(o.status) if o.status is not None else "left_before_status"
        statuses[key] = statuses.get(key, 0) + 1
        if o.error:
            errors[o.error] = errors.get(o.error, 0) + 1
            examples.setdefault(o.error, [])
            if len(examples[o.error]) < 5:
                examples[o.error].append(f"t={o.sent_at:.1f}s #{o.planned.ticket} {o.planned.cell}: {o.detail}")
    complete = [o for o in outcomes if o.ms is not None]
    cells: dict[str, list[float]] = {}
    minutes: dict[int, list[float]] = {}
    for o in complete:
        assert o.ms is not None
        cells.setdefault(f"{o.planned.scenario}/{'stream' if o.planned.stream else 'json'}", []).append(o.ms)
        minutes.setdefault(int(o.sent_at // 60), []).append(o.ms)
    return {
        "sent": phase.sent, "answered": sum(o.status is not None for o in outcomes),
        "skipped_at_cap": phase.skipped, "left_early": sum(o.left for o in outcomes), "complete": len(complete),
        "sender_max_lag_ms": round(phase.max_lag_ms, 1), "statuses": dict(sorted(statuses.items())),
        "status_5xx": sum(1 for o in outcomes if (o.status or 0) >= 500), "errors": errors,
        "error_examples": examples, "latency_ms": _latency([o.ms for o in complete if o.ms is not None]),
        "latency_by_cell": {cell: _latency(ms) for cell, ms in sorted(cells.items())},
        "latency_by_minute": {str(m): _latency(ms) for m, ms in sorted(minutes.items())},
    }


def print_phase(name: str, result: dict[str, Any]) -> None:
    lat, idle = result["latency_ms"], result["idle"]
    print(f"{name}: {result['seconds']} s, sent {result['sent']}, answered {result['answered']}, "
          f"left early {result['left_early']}, skipped at cap {result['skipped_at_cap']}, "
          f"statuses {result['statuses']}, errors {result['errors'] or 'none'}; others used "
          f"{result['others_cores'] or 0:.2f} cores", flush=True)
    if lat["n"]:
        print(f"  latency of {lat['n']} complete requests: p50 {lat['p50']} ms, p99 {lat['p99']} ms, "
              f"max {lat['max']} ms", flush=True)
    for cell, cell_lat in result["latency_by_cell"].items():
        figures = "  ".join(f"{q} {cell_lat.get(q, '-'):>8}" for q in ("p50", "p99", "max"))
        print(f"    {cell:24} n {cell_lat['n']:5}  {figures}", flush=True)
    for kind, lines in result["error_examples"].items():
        for line in lines[:2]:
            print(f"  {kind}: {line}", flush=True)
    log = result["proxy_log"]
    print(f"  proxy log: statuses {log['access_statuses']}, guard failures {log['guard_failures'] or 'none'}, "
          f"upstream errors {log['upstream_errors'] or 'none'}, warnings/errors {log['problems'] or 'none'}",
          flush=True)
    print(f"  idle after {idle['settled_s']} s: RSS {idle['rss_mib']:.1f} MiB, fds {idle['fds']} "
          f"{idle['fd_kinds']}, threads {idle['threads']}", flush=True)


def verdicts(results: dict[str, Any]) -> dict[str, dict[str, Any]]:
    base, end = results["warmup"]["idle"], results["measured"]["idle"]
    fivexx = sum(results[p]["status_5xx"] + results[p]["proxy_log"]["access_5xx"] for p in ("warmup", "measured"))
    errors = sum(sum(results[p]["errors"].values()) for p in ("warmup", "measured"))
    growth = end["rss_mib"] / base["rss_mib"] - 1
    return {
        "no_5xx": {"ok": fivexx == 0, "value": fivexx},
        "rss_growth": {"ok": growth <= RSS_GROWTH_LIMIT, "value": round(growth, 4), "baseline_mib": base["rss_mib"],
                       "end_mib": end["rss_mib"], "limit": RSS_GROWTH_LIMIT},
        "fds_back_to_baseline": {"ok": end["fds"] <= base["fds"], "baseline": base["fds"], "end": end["fds"]},
        "threads_back_to_baseline": {"ok": end["threads"] <= base["threads"], "baseline": base["threads"],
                                     "end": end["threads"]},
        "every_answer_as_expected": {"ok": errors == 0, "value": errors},
    }


def tree_state() -> dict[str, Any]:
    """The checkout the proxy ran from: PYTHONPATH's when set (another tree, ``git worktree add``), else this
    one; its commit, and what of guardproxy/ and policies/ differed from it (others edit the same tree)."""
    tree = os.environ.get("PYTHONPATH") or str(REPO)

    def git(*command: str) -> str:
        return subprocess.run(["git", "-C", tree, *command], capture_output=True, text=True, timeout=30).stdout.rstrip()

    return {"checkout": tree, "commit": git("rev-parse", "--short", "HEAD"),
            "changes": git("status", "--short", "guardproxy", "policies").splitlines()}


def start_servers(lab: Lab, policy: str, log_path: Path, launcher: str | None) -> tuple[Server, Server]:
    port = free_port()
    demo = lab.launch("demo", pinned(lab.cpu("load"), [PYTHON, "-m", "guardproxy.demo", "--port", str(port)]),
                      "/v1/models", port, timeout=60)
    port = free_port()
    program = [PYTHON, launcher] if launcher else [GUARDPROXY]
    command = [*program, "serve", "--upstream", demo.url + "/v1", "--azure-upstream", demo.url, "--policy", policy,
               "--port", str(port)]
    proxy = soak_probe.launch_logged(lab, "proxy", pinned(lab.cpu("proxy"), command), port, log_path)
    return demo, proxy


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=float, default=20, help="requests per second (open loop)")
    parser.add_argument("--duration", type=float, default=120, help="seconds of measured traffic")
    parser.add_argument("--warmup", type=float, default=60, help="seconds of traffic before the baseline")
    parser.add_argument("--concurrency", type=int, default=64, help="most requests out at once")
    parser.add_argument("--max-requests", type=int, default=0, help="most requests in all (0: rate x time)")
    parser.add_argument("--settle", type=float, default=10,
                        help="idle seconds before each reading (the upstream closes idle connections after 5 s)")
    parser.add_argument("--sample-every", type=float, default=5, help="seconds between timeline readings")
    parser.add_argument("--policy", default="policies")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--launcher", metavar="SCRIPT",
                        help="run the proxy as `python SCRIPT serve ...`: a wrapper of guardproxy.cli.main for "
                             "diagnosis, sent SIGUSR1 after each idle reading")
    parser.add_argument("--proxy-log", type=Path, help="keep the proxy's stderr (access lines, log) in this file")
    parser.add_argument("--no-pin", dest="pin", action="store_false", help="do not pin processes to CPUs")
    parser.add_argument("--out", type=Path, help="JSON results (default benchmarks/results/soak-<duration>s.json)")
    args = parser.parse_args()
    args.max_requests = args.max_requests or math.ceil(args.rate * (args.warmup + args.duration))
    out = args.out or REPO / "benchmarks" / "results" / f"soak-{args.duration:.0f}s.json"
    if args.pin:
        os.sched_setaffinity(0, {int(LOAD_CPU)})
    lab = Lab(pin=args.pin)
    began = time.time()
    results: dict[str, Any] = {
        "started": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(began)), "machine": describe(),
        "load_average_start": os.getloadavg(), "tree": tree_state(),
        "arguments": {k: v for k, v in vars(args).items() if k not in ("out", "proxy_log")},
    }
    try:
        log_path = args.proxy_log or lab.tmp / "proxy.log"
        demo, proxy = start_servers(lab, args.policy, log_path, args.launcher)
        results["commands"] = lab.commands()
        probe = soak_probe.Probe(proxy, log_path, demo.url)
        results |= uvloop.run(soak(args, proxy, probe, lab))
    finally:
        lab.close()
    results["minutes"] = round((time.time() - began) / 60, 1)
    results["load_average_end"] = os.getloadavg()
    results["criteria"] = verdicts(results)
    out.write_text(json.dumps(results, indent=1))
    print(f"RSS trend over the second half of the measured traffic: {results.get('rss_trend')}")
    print(f"\nresults in {out.relative_to(REPO) if out.is_relative_to(REPO) else out}")
    for name, verdict in results["criteria"].items():
        shown = {k: v for k, v in verdict.items() if k != "ok"}
        print(f"  {'PASS' if verdict['ok'] else 'FAIL'} {name}: {shown}")
    return 0 if all(v["ok"] for v in results["criteria"].values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
