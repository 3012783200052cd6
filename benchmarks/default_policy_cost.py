# ruff: noqa: E402, E501, SIM115, B007, B023, E741  (kept as run for the figures in benchmarks/README.md; tidy before extending)
"""The default policy's added latency (default policy minus no guards, same tree, same body in the same
iteration) at 200 and 2,000 characters, JSON and streamed, for this tree and an older one side by side.
Old tree: ``git worktree add /tmp/base2 09bda8a && ln -s $PWD/.venv /tmp/base2/.venv``; then
``N=150 .venv/bin/python benchmarks/default_policy_cost.py /tmp/out.json``. Writes its logs to /tmp/defcost."""

import json
import os
import random
import signal
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.makedirs("/tmp/defcost", exist_ok=True)
from chat_client import percentile, run, user_body
from processes import free_port
from prose import Prose
from servers import _answers, cpu_seconds

N = int(os.environ.get("N", "100"))
WARM = 3
TREES = {
    "cur": os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
    "old": os.environ.get("BASE", "/tmp/base2"),
}
procs = {}


def launch(key, cwd, cmd, ready, port, env_extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GUARDPROXY_", "PYTHONPATH"))}
    env.update(env_extra)
    p = subprocess.Popen(
        cmd,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=open(f"/tmp/defcost/{key}.err", "w"),
        start_new_session=True,
    )
    procs[key] = (p, f"http://127.0.0.1:{port}")
    t = time.monotonic()
    while not _answers(f"http://127.0.0.1:{port}{ready}"):
        if p.poll() is not None or time.monotonic() - t > 180:
            raise RuntimeError(key)
        time.sleep(0.2)
    print("ready", key, p.pid, " ".join(cmd), env_extra, flush=True)


def busy_jiffies():
    v = [int(x) for x in open("/proc/stat").readline().split()[1:]]
    hz = os.sysconf("SC_CLK_TCK")
    return (sum(v[:8]) - v[3] - v[4]) / hz, v[6] / hz, v[7] / hz  # busy, softirq, steal


try:
    up = free_port()
    launch(
        "upstream",
        "/work/main",
        ["taskset", "-c", "0", ".venv/bin/python", "benchmarks/fast_upstream.py", "--port", str(up)],
        "/v1/models",
        up,
        {},
    )
    for tree, root in TREES.items():
        extra = {"PYTHONPATH": root} if tree == "old" else {}
        for kind, pol in (("none", "benchmarks/policies/no_guards.yaml"), ("def", "policies/default.yaml")):
            port = free_port()
            launch(
                f"{tree}-{kind}",
                root,
                [
                    "taskset",
                    "-c",
                    "1",
                    ".venv/bin/guardproxy",
                    "serve",
                    "--upstream",
                    f"http://127.0.0.1:{up}/v1",
                    "--policy",
                    pol,
                    "--port",
                    str(port),
                ],
                "/readyz",
                port,
                extra,
            )
    # verify code origin with py-spy
    for key in ("cur-def", "old-def"):
        pid = procs[key][0].pid
        out = subprocess.run(
            ["/work/main/.venv/bin/py-spy", "dump", "--pid", str(pid)], capture_output=True, text=True
        ).stdout
        files = sorted({l.split("(")[1].split(":")[0] for l in out.splitlines() if "guardproxy/" in l and "(" in l})
        print("py-spy", key, files[:6], flush=True)
    keys = ["cur-none", "cur-def", "old-none", "old-def"]
    ours = [p.pid for p, _ in procs.values()] + [os.getpid()]
    prose = Prose(424242)
    rng = random.Random(7)
    results = {}

    async def cell(client, chars, stream):
        ms = {k: [] for k in keys}
        bad = {k: 0 for k in keys}
        for i in range(WARM + N):
            body = user_body(prose.text(chars), stream)
            order = keys[:]
            rng.shuffle(order)
            for k in order:
                t, st = await client.post(procs[k][1] + "/v1/chat/completions", body)
                if st != 200:
                    bad[k] += 1
                if i >= WARM:
                    ms[k].append(t)
        return ms, bad

    for chars in (200, 2000):
        for stream in (False, True):
            b0, o0, w0 = busy_jiffies(), cpu_seconds(ours), time.monotonic()
            ms, bad = run(lambda c: cell(c, chars, stream))
            b1, o1, w1 = busy_jiffies(), cpu_seconds(ours), time.monotonic()
            other = (b1[0] - b0[0]) - (o1 - o0)
            sirq = b1[1] - b0[1]
            steal = b1[2] - b0[2]
            row = {
                "wall_s": w1 - w0,
                "other_cpu_s": other,
                "softirq_s": sirq,
                "steal_s": steal,
                "other_cpu_share": other / (w1 - w0) / 2,
                "bad": bad,
            }
            for k in keys:
                row[k] = {
                    "p50": statistics.median(ms[k]),
                    "p99": percentile(ms[k], 0.99),
                    "p95": percentile(ms[k], 0.95),
                }
            for t in ("cur", "old"):
                row[f"{t}_added_p50"] = row[f"{t}-def"]["p50"] - row[f"{t}-none"]["p50"]
                row[f"{t}_added_p99"] = row[f"{t}-def"]["p99"] - row[f"{t}-none"]["p99"]
                # paired per-request difference (same body, same iteration)
                d = [a - b for a, b in zip(ms[f"{t}-def"], ms[f"{t}-none"], strict=False)]
                row[f"{t}_paired_p50"] = statistics.median(d)
                row[f"{t}_paired_p99"] = percentile(d, 0.99)
            name = f"{chars}-{'stream' if stream else 'json'}"
            results[name] = {**row, "raw": ms}
            print(
                f"{name:12} cur +{row['cur_added_p50']:7.2f} p50 +{row['cur_added_p99']:7.2f} p99 | old +{row['old_added_p50']:7.2f} p50 +{row['old_added_p99']:7.2f} p99"
                f" | none p50 cur {row['cur-none']['p50']:.2f} old {row['old-none']['p50']:.2f} | not-ours CPU {other:.1f}s in {w1 - w0:.0f}s wall ({row['other_cpu_share'] * 100:.1f}% of 2 cores; softirq {sirq:.1f}s, steal {steal:.1f}s) bad {bad}",
                flush=True,
            )
    json.dump(results, open(sys.argv[1], "w"), indent=1)
finally:
    for k, (p, _) in procs.items():
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
