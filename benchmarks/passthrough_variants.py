# ruff: noqa: E501, E701, E702, E401, I001, B905  (kept as run for the figures in benchmarks/README.md)
"""Knock-out variants of guardproxy against the reference relay, no guards, c=16, side by side: CPU per
request of each, and its ratio to the reference's paired round by round (the servers take turns).

A variant is a tree with one piece changed (a worktree of this one plus an edit), run through
PYTHONPATH; MODES picks json, stream or both. As used for "Pass-through at 0.75 of the reference":

    git worktree add --detach /tmp/v1 HEAD && ln -s $PWD/.venv /tmp/v1/.venv   # then edit /tmp/v1
    MODES=stream .venv/bin/python benchmarks/passthrough_variants.py 12 2 \
        '{"cur": ["PP=/work/main"], "edited": ["PP=/tmp/v1"]}'

Each variant is a list of extra ``guardproxy serve`` arguments, ``PP=DIR`` (PYTHONPATH) and ``ENV:K=V``."""
import json, os, statistics, sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from chat_client import preflight
from loadgen import run_wrk, write_script
from passthrough import BODY, HEADERS, NO_GUARDS
from processes import free_port
from servers import LOAD_CPU, Lab, cpu_seconds, pinned
rounds = int(sys.argv[1]); seconds = int(sys.argv[2])
variants = json.loads(sys.argv[3])  # {"name": [extra args], ...} ; "@PYTHONPATH" key inside list prefix "PP=dir"
os.sched_setaffinity(0, {int(LOAD_CPU)})
lab = Lab(pin=True)
try:
    up = lab.upstream()
    targets = {"reference": lab.reference("aiohttp", up)}
    for name, extra in variants.items():
        env = {}
        args = []
        for a in extra:
            if a.startswith("PP="): env["PYTHONPATH"] = a[3:]
            elif a.startswith("ENV:"): k, v = a[4:].split("=", 1); env[k] = v
            else: args.append(a)
        port = free_port()
        cmd = pinned(lab.cpu("proxy"), [os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), ".venv", "bin", "guardproxy"), "serve", "--upstream", up.url + "/v1", "--policy", str(NO_GUARDS), "--port", str(port), *args])
        targets[name] = lab.launch(name, cmd, "/readyz", port, env=env)
    for s in targets.values():
        preflight(s.url + "/v1/chat/completions", HEADERS)
    for stream in [m == "stream" for m in os.environ.get("MODES", "json,stream").split(",")]:
        body = json.dumps({**BODY, "stream": True} if stream else BODY)
        script = write_script(lab.tmp / f"v-{stream}.lua", HEADERS, body)
        for s in targets.values():
            run_wrk(s.url + "/v1/chat/completions", script, 16, 1, lab.cpu("load"))
        names = list(targets); us = {n: [] for n in names}; rps = {n: [] for n in names}
        for r in range(rounds):
            order = names[r % len(names):] + names[:r % len(names)]
            for n in order:
                before = cpu_seconds([targets[n].process.pid])
                run = run_wrk(targets[n].url + "/v1/chat/completions", script, 16, seconds, lab.cpu("load"))
                us[n].append(1e6 * (cpu_seconds([targets[n].process.pid]) - before) / run.requests)
                rps[n].append(run.rps)
        mode = "stream" if stream else "json"
        ref = statistics.median(us["reference"])
        for n in names:
            m = statistics.median(us[n]); mn = min(us[n]); pr = statistics.median(a / b for a, b in zip(rps[n], rps["reference"]))
            pc = statistics.median(r / t for r, t in zip(us["reference"], us[n]))
            print(f"{mode:6s} paired-cpu-ratio {pc:.3f} {n:14s} CPU us/req med {m:6.1f} min {mn:6.1f} ref/this {ref/m:.3f} min-ratio {min(us['reference'])/mn:.3f}  rps {statistics.median(rps[n]):7.0f}  per-round rps ratio {pr:.3f}", flush=True)
finally:
    lab.close()
