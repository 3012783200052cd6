# ruff: noqa: E501, SIM115  (kept as run for the figures in benchmarks/README.md; tidy before extending)
"""Pass-through head to head at c=16: the raw-ASGI reference relay (aiohttp), this tree's guardproxy
and an older tree's, behind one upstream in one lab, rounds in rotating order; req/s and server CPU per
request. The older tree is a worktree: ``git worktree add /tmp/base 09bda8a && ln -s $PWD/.venv
/tmp/base/.venv``, then ``.venv/bin/python benchmarks/passthrough_h2h.py ROUNDS SECONDS [/tmp/base [OUT.json]]``
(the figures also go to OUT.json, by default /tmp/gpbench/h2h.json)."""

import json
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from chat_client import preflight
from interference import Interference
from loadgen import run_wrk, write_script
from passthrough import BODY, HEADERS, NO_GUARDS
from processes import free_port
from servers import LOAD_CPU, Lab, cpu_seconds, pinned

rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
seconds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
BASE = sys.argv[3] if len(sys.argv) > 3 else "/tmp/base"
OUT = sys.argv[4] if len(sys.argv) > 4 else "/tmp/gpbench/h2h.json"  # argv[3] is BASE, a directory
os.sched_setaffinity(0, {int(LOAD_CPU)})
_base_commit = os.popen(f"git -C {BASE} rev-parse --short HEAD 2>/dev/null").read().strip() or "unknown"
print(f"gp-base is {BASE} at {_base_commit}; gp-current is this tree", flush=True)
lab = Lab(pin=True)
try:
    up = lab.upstream()
    targets = {"reference": lab.reference("aiohttp", up), "gp-current": lab.guardproxy("gp-cur", NO_GUARDS, up)}
    port = free_port()
    cmd = pinned(
        lab.cpu("proxy"),
        [
            ".venv/bin/guardproxy",
            "serve",
            "--upstream",
            up.url + "/v1",
            "--policy",
            str(NO_GUARDS),
            "--port",
            str(port),
        ],
    )
    targets["gp-base"] = lab.launch("gp-base", cmd, "/readyz", port, env={"PYTHONPATH": BASE})
    for name, s in targets.items():
        env = open(f"/proc/{s.process.pid}/environ", "rb").read().split(b"\0")
        print(name, s.process.pid, [e for e in env if e.startswith(b"PYTHONPATH")], flush=True)
        preflight(s.url + "/v1/chat/completions", HEADERS)
    out = {}
    for stream in (False, True):
        body = json.dumps({**BODY, "stream": True} if stream else BODY)
        script = write_script(lab.tmp / f"h2h-{stream}.lua", HEADERS, body)
        for s in targets.values():
            run_wrk(s.url + "/v1/chat/completions", script, 16, 1, lab.cpu("load"))
        names = list(targets)
        rps = {n: [] for n in names}
        oth = {n: [] for n in names}
        us = {n: [] for n in names}
        for r in range(rounds):
            order = names[r % 3 :] + names[: r % 3]
            for n in order:
                w = Interference(lab)
                before = cpu_seconds([targets[n].process.pid])
                run = run_wrk(targets[n].url + "/v1/chat/completions", script, 16, seconds, lab.cpu("load"))
                us[n].append(1e6 * (cpu_seconds([targets[n].process.pid]) - before) / run.requests)
                rps[n].append(run.rps)
                c = w.cores()
                oth[n].append(c if c is not None else float("nan"))
            print(
                f"  {'stream' if stream else 'json'} round {r}: "
                + "  ".join(f"{n} {rps[n][-1]:.0f}" for n in names)
                + "  | CPU us/req "
                + " ".join(f"{n} {us[n][-1]:.0f}" for n in names)
                + f"  | cur/ref {rps['gp-current'][-1] / rps['reference'][-1]:.2f} base/ref {rps['gp-base'][-1] / rps['reference'][-1]:.2f}",
                flush=True,
            )
        med = {n: statistics.median(rps[n]) for n in names}
        out["stream" if stream else "json"] = {"rps": rps, "others": oth, "median": med, "cpu_us": us}
        mus = {n: statistics.median(us[n]) for n in names}
        print(
            "  median CPU us/request: "
            + "  ".join(f"{n} {mus[n]:.0f}" for n in names)
            + f"  ref/current {mus['reference'] / mus['gp-current']:.3f} ref/base {mus['reference'] / mus['gp-base']:.3f}"
            + "  paired per-round ref/current "
            + f"{statistics.median(r / c for r, c in zip(us['reference'], us['gp-current'], strict=True)):.3f}"
            + f" ref/base {statistics.median(r / c for r, c in zip(us['reference'], us['gp-base'], strict=True)):.3f}",
            flush=True,
        )
        print(
            f"{'stream' if stream else 'json'} median: "
            + "  ".join(f"{n} {med[n]:.0f}" for n in names)
            + f"  ratio current {med['gp-current'] / med['reference']:.3f}  base {med['gp-base'] / med['reference']:.3f}"
            + f"  median per-round ratio current {statistics.median(a / b for a, b in zip(rps['gp-current'], rps['reference'], strict=False)):.3f}"
            + f" base {statistics.median(a / b for a, b in zip(rps['gp-base'], rps['reference'], strict=False)):.3f}",
            flush=True,
        )
    os.makedirs(os.path.dirname(OUT) or ".", exist_ok=True)
    json.dump(out, open(OUT, "w"), indent=1)
finally:
    lab.close()
