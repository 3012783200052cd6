"""How much CPU the rest of the machine took while a figure was measured.

On a shared 2-core machine a figure is only as good as the quiet it was taken
in. ``Interference`` reads the machine's busy CPU time (/proc/stat) and
subtracts what the suite's own processes used: this process, its reaped
children (wrk, installs, stopped servers) and the servers still running. What
is left was used by others; it is reported as an average number of cores.
"""

from __future__ import annotations

import os
import resource
import time
from pathlib import Path

from servers import Lab, cpu_seconds, descendants

_TICK = os.sysconf("SC_CLK_TCK")


def _busy_seconds() -> float:
    user, nice, system, _idle, _iowait, irq, softirq, steal = (
        int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9])
    return (user + nice + system + irq + softirq + steal) / _TICK


def _own_seconds(lab: Lab) -> float:
    used = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        used += usage.ru_utime + usage.ru_stime
    for server in list(lab.servers.values()):
        pids = [server.process.pid, *descendants(server.process.pid)]
        try:
            used += cpu_seconds(pids)
        except OSError:  # exited between the listing and the read: counted once reaped
            continue
    return used


class Interference:
    """Started on creation; ``cores()`` is the others' average CPU use since, in cores, or None
    for less than a second, where clock ticks (10 ms) make the figure meaningless."""

    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        self._start = (time.monotonic(), _busy_seconds(), _own_seconds(lab))

    def cores(self) -> float | None:
        wall, busy, own = time.monotonic(), _busy_seconds(), _own_seconds(self.lab)
        elapsed = wall - self._start[0]
        if elapsed < 1:
            return None
        others = ((busy - self._start[1]) - (own - self._start[2])) / elapsed
        return min(float(os.cpu_count() or 1), max(0.0, others))
