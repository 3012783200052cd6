"""Section 6: resident memory (VmRSS) of the processes that run guardproxy's app.

With one worker, ``guardproxy serve`` runs the app in the process it was
started as; the section checks that this process has no worker children, so
its VmRSS is the worker's. Idle is read as soon as ``/readyz`` answers ready
(every guard's model loaded); "after load" at the end of the sections that
loaded the process. Run on its own, the section applies a short load itself.
The ``--workers 2`` figures come from the workers section, per child.
"""

from __future__ import annotations

from typing import Any

from chat_client import run, user_body
from guard_cost import WARMUP, paired, proxies
from plan import Plan
from prose import Prose
from servers import Lab, Server, descendants


def _own_load(none: Server, full: Server, plan: Plan) -> None:
    """Prompts of every size to both, once each: what the guards keep grows with what they saw."""
    prose = Prose(plan.seed + 6)
    bodies = [user_body(prose.text(chars)) for chars, count in plan.guard_requests.items()
              for _ in range(WARMUP + count)]
    run(lambda client: paired(client, none.url + "/v1/chat/completions", full.url + "/v1/chat/completions", bodies))
    for server in (none, full):
        server.loaded_by.append("memory")


def run_section(lab: Lab, plan: Plan) -> dict[str, Any]:
    none, full, _keyword_topics = proxies(lab)
    if not none.loaded_by or not full.loaded_by:
        _own_load(none, full, plan)
    rows = []
    for policy, server in (("none", none), ("full", full)):
        children = descendants(server.process.pid)
        if children:
            raise RuntimeError(f"guardproxy with one worker has child processes {children}: which holds the app?")
        pid = server.process.pid
        rows.append({"policy": policy, "workers": 1, "pid": pid, "idle_mib": server.rss_idle_mib[pid],
                     "after_mib": server.rss_mib()[pid], "loaded_by": sorted(set(server.loaded_by))})
        print(f"  {policy:4} policy: {rows[-1]['idle_mib']:6.0f} MiB idle, {rows[-1]['after_mib']:6.0f} MiB after "
              f"{', '.join(rows[-1]['loaded_by'])}", flush=True)
    return {"rows": rows}
