"""The wrk driver: one thread, C connections, D seconds, and a Lua ``done`` hook that
prints exact percentiles, the maximum and the error counts as one JSON line.

wrk counts a response with a status of 400 or more as a ``status`` error and a
request slower than ``--timeout`` as a ``timeout``; a row with any error is
flagged in the report rather than dropped. With ``bodies_file`` every request
takes the next line of that file (JSON bodies, one per line), so guards that
cache by text see a new prompt each time; ``reused`` tells when the run
outgrew the file and started over.
"""

from __future__ import annotations

import json
import shlex
import statistics
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

from servers import pinned

_DONE = r"""
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('WRK_JSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,' ..
    '"p50":%d,"p90":%d,"p99":%d,"p999":%d,"max":%d,"mean":%.3f}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9),
    latency.max, latency.mean))
end
"""

_ROTATE = r"""
local bodies = {}
for line in io.lines("%s") do bodies[#bodies + 1] = line end
local next_body = 0
request = function()
  next_body = next_body + 1
  if next_body > #bodies then next_body = 1 end
  return wrk.format(nil, nil, nil, bodies[next_body])
end
"""


@dataclass
class WrkRun:
    """One wrk run; latencies in ms."""

    concurrency: int
    seconds: int
    requests: int
    rps: float
    p50: float
    p90: float
    p99: float
    p999: float
    max: float
    mean: float
    errors: dict[str, int]
    reused: bool
    command: str

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    def as_dict(self) -> dict[str, object]:
        return {**asdict(self), "error_count": self.error_count}


def write_script(path: Path, headers: dict[str, str], body: str | None = None,
                 bodies_file: Path | None = None) -> Path:
    """A wrk Lua script that POSTs ``body`` (or each line of ``bodies_file`` in turn) as JSON."""
    lines = ['wrk.method = "POST"', 'wrk.headers["Content-Type"] = "application/json"']
    lines += [f"wrk.headers[{json.dumps(name)}] = {json.dumps(value)}" for name, value in headers.items()]
    if body is not None:
        lines.append(f"wrk.body = [==[{body}]==]")
    if bodies_file is not None:
        lines.append(_ROTATE % bodies_file)
    path.write_text("\n".join(lines) + "\n" + _DONE)
    return path


def run_wrk(url: str, script: Path, concurrency: int, seconds: int, cpu: str | None,
            bodies: int | None = None) -> WrkRun:
    """Run wrk against ``url`` and parse its ``done`` line; raises if wrk fails or prints none."""
    command = pinned(cpu, ["wrk", "-t1", f"-c{concurrency}", f"-d{seconds}s", "--timeout", "10s", "--latency",
                           "-s", str(script), url])
    finished = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60)
    line = next((x for x in finished.stdout.splitlines() if x.startswith("WRK_JSON ")), None)
    if finished.returncode or line is None:
        raise RuntimeError(f"wrk failed ({finished.returncode}): {finished.stderr.strip() or finished.stdout[-500:]}")
    raw = json.loads(line.removeprefix("WRK_JSON "))
    errors = {name: raw[name] for name in ("connect", "read", "write", "status", "timeout")}
    return WrkRun(
        concurrency=concurrency, seconds=seconds, requests=raw["requests"],
        rps=raw["requests"] / (raw["duration_us"] / 1e6),
        p50=raw["p50"] / 1000, p90=raw["p90"] / 1000, p99=raw["p99"] / 1000, p999=raw["p999"] / 1000,
        max=raw["max"] / 1000, mean=raw["mean"] / 1000, errors=errors,
        reused=bodies is not None and raw["requests"] > bodies, command=shlex.join(command),
    )


def combine(runs: list[WrkRun]) -> dict[str, object]:
    """Rounds of the same cell as one row: the median round's rate and percentiles (a burst of other
    work on the machine spoils one round, not the row), the worst maximum, every request and error,
    and the rounds themselves."""
    errors = {name: sum(run.errors[name] for run in runs) for name in runs[0].errors}
    return {
        "concurrency": runs[0].concurrency, "seconds": sum(run.seconds for run in runs),
        "requests": sum(run.requests for run in runs), "rps": statistics.median(run.rps for run in runs),
        **{q: statistics.median(getattr(run, q) for run in runs) for q in ("p50", "p90", "p99", "p999", "mean")},
        "max": max(run.max for run in runs), "errors": errors, "error_count": sum(errors.values()),
        "rounds": [{"rps": run.rps, "p50": run.p50, "p99": run.p99} for run in runs], "command": runs[0].command,
    }
