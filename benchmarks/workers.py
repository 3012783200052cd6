"""Section 7: two workers against one, on both cores, nothing pinned.

The same machine runs the load generator and the upstream, so two workers can
never double a figure here; the ratio shows what a second core is worth when
the proxy has to share it. Full policy rows rotate through distinct 200-character
prompts so that no guard answers from its cache.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from chat_client import MODEL
from loadgen import run_wrk, write_script
from plan import Plan
from prose import Prose
from servers import REPO, Lab

POLICIES = REPO / "benchmarks" / "policies"
BODY = json.dumps({"model": MODEL, "messages": [{"role": "user", "content": "What is the capital of France?"}]})
HEADERS = {"authorization": "Bearer sk-bench"}


def _rotating(lab: Lab, tag: str, count: int, prose: Prose) -> tuple[Path, int]:
    """A wrk script that sends each of ``count`` new 200-character prompts in turn."""
    bodies = lab.tmp / f"{tag}.jsonl"
    bodies.write_text("".join(json.dumps({"model": MODEL, "messages": [{"role": "user", "content": prose.text(200)}]})
                              + "\n" for _ in range(count)))
    return write_script(lab.tmp / f"{tag}.lua", HEADERS, bodies_file=bodies), count


def run_section(lab: Lab, plan: Plan) -> dict[str, Any]:
    """``lab`` must be unpinned: Lab(pin=False)."""
    upstream = lab.upstream("upstream-free")
    prose = Prose(plan.seed + 7)
    fixed = write_script(lab.tmp / "workers-fixed.lua", HEADERS, BODY)
    rows: list[dict[str, Any]] = []
    memory: list[dict[str, Any]] = []
    for policy in ("none", "full"):
        for workers in (1, 2):
            path = POLICIES / ("no_guards.yaml" if policy == "none" else "full.yaml")
            server = lab.guardproxy(f"gp-{policy}-w{workers}", path, upstream, workers=workers)
            url = server.url + "/v1/chat/completions"
            if policy == "none":
                runs = [(fixed, c, None) for c in (16, 64)]
                run_wrk(url, fixed, 64, plan.warmup_seconds, None)
            else:
                warm, warm_count = _rotating(lab, f"warm-w{workers}", 300, prose)
                run_wrk(url, warm, 16, plan.warmup_seconds, None, bodies=warm_count)
                script, count = _rotating(lab, f"rotate-w{workers}", plan.worker_bodies, prose)
                runs = [(script, 16, count)]
            server.settle()  # wrk leaves its last requests in flight; the proxy finishes them first
            for script, concurrency, bodies in runs:
                # With guards a request takes long at c=16: a longer run, so that enough of them finish.
                seconds = plan.worker_seconds * (1 if bodies is None else 2)
                result = run_wrk(url, script, concurrency, seconds, None, bodies=bodies)
                rows.append({"policy": policy, "workers": workers, "prompt": "fixed" if bodies is None else
                             "distinct 200-char", **result.as_dict()})
                print(f"  {policy:4} policy, {workers} worker(s), c={concurrency:<3} {result.rps:8.0f} req/s  "
                      f"p50 {result.p50:8.2f} ms  p99 {result.p99:8.2f} ms  errors {result.error_count}", flush=True)
            after = server.rss_mib()
            memory += [{"policy": policy, "workers": workers, "pid": pid, "idle_mib": server.rss_idle_mib.get(pid),
                        "after_mib": rss} for pid, rss in after.items()]
            lab.stop(server.key)
    for row in rows:
        single = next(r for r in rows if r["policy"] == row["policy"] and r["workers"] == 1
                      and r["concurrency"] == row["concurrency"])
        row["x_one_worker"] = row["rps"] / single["rps"] if single["rps"] else None
    return {"rows": rows, "memory": memory}
