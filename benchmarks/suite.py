"""The benchmark suite of the performance issue, in one command: ``make bench``.

    .venv/bin/python benchmarks/suite.py [--quick] [--only passthrough,ttft,guards,scaling,memory,workers]
                                         [--no-litellm] [--output PATH] [--readme | --no-readme]

Sections, in this order (benchmarks/README.md says what each measures and how):
passthrough (with LiteLLM), ttft, guards, scaling, memory, workers. The upstream,
wrk and this process's clients run on CPU 0 and the server under test on CPU 1,
one worker, except in the workers section. Raw results go to
benchmarks/results/latest.json (``--quick``: quick.json) and, for full runs, the
tables into benchmarks/README.md between its marker comments. With ``--only``,
the sections run replace theirs in the existing results file and the others are
kept. Every process the suite starts is stopped when it ends, however it ends.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shlex
import shutil
import signal
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import guard_cost
import memory
import passthrough
import scaling
import ttft
import workers
from interference import Interference
from machine import describe, load_average
from plan import FULL, QUICK, Plan
from report import write_readme
from servers import LOAD_CPU, REPO, Lab

SECTIONS = ("passthrough", "ttft", "guards", "scaling", "memory", "workers")
RESULTS = REPO / "benchmarks" / "results"
README = REPO / "benchmarks" / "README.md"


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="short runs, for a smoke check (about 3 minutes)")
    parser.add_argument("--only", default=",".join(SECTIONS), help="comma-separated sections to run")
    parser.add_argument("--no-litellm", dest="litellm", action="store_false", help="leave LiteLLM's rows out")
    parser.add_argument("--output", type=Path, help="results JSON (default results/latest.json, quick.json)")
    readme = parser.add_mutually_exclusive_group()
    readme.add_argument("--readme", dest="readme", action="store_true", default=None,
                        help="write the tables into benchmarks/README.md (the default for full runs)")
    readme.add_argument("--no-readme", dest="readme", action="store_false")
    args = parser.parse_args(argv)
    args.sections = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = set(args.sections) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections {sorted(unknown)}; choose from {', '.join(SECTIONS)}")
    args.output = args.output or RESULTS / ("quick.json" if args.quick else "latest.json")
    args.readme = (not args.quick) if args.readme is None else args.readme
    return args


def _run_pinned(name: str, lab: Lab, plan: Plan, args: argparse.Namespace) -> dict[str, Any]:
    if name == "passthrough":
        return passthrough.run_section(lab, plan, with_litellm=args.litellm)
    sections = {"ttft": ttft.run_section, "guards": guard_cost.run_section, "scaling": scaling.run_section,
                "memory": memory.run_section}
    return sections[name](lab, plan)


def _run_sections(args: argparse.Namespace, plan: Plan, results: dict[str, Any]) -> None:
    """Run the chosen sections, each one's failure recorded without stopping the others."""
    all_cpus = os.sched_getaffinity(0)
    pinned = Lab(pin=True)
    try:
        os.sched_setaffinity(0, {int(LOAD_CPU)})
        for name in [s for s in SECTIONS if s in args.sections and s != "workers"]:
            _section(name, results, pinned, lambda name=name: _run_pinned(name, pinned, plan, args))
    finally:
        pinned.close()
        os.sched_setaffinity(0, all_cpus)
    if "workers" in args.sections:
        free = Lab(pin=False)
        try:
            _section("workers", results, free, lambda: workers.run_section(free, plan))
        finally:
            free.close()


def _section(name: str, results: dict[str, Any], lab: Lab, work: Callable[[], dict[str, Any]]) -> None:
    print(f"== {name}", flush=True)
    started = time.monotonic()
    first = len(lab.started)
    others = Interference(lab)
    try:
        results[name] = work()
        results["errors"].pop(name, None)
    except Exception as exc:  # recorded in the results, the report and the exit code
        traceback.print_exc()
        results[name] = None
        results["errors"][name] = f"{type(exc).__name__}: {exc}"
    share = others.cores()
    if results[name] is not None:
        results[name]["commands"] = [server.shown_command for server in lab.started[first:]]
        results[name]["others_cores"] = share
    results["meta"]["sections_run_at"][name] = _now()
    print(f"   {name}: {time.monotonic() - started:.0f} s" + (f"; other processes used {share:.2f} cores meanwhile"
                                                           if share is not None else ""), flush=True)


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _load_previous(path: Path, sections: list[str]) -> dict[str, Any]:
    if set(sections) == set(SECTIONS) or not path.exists():
        return {}
    previous: dict[str, Any] = json.loads(path.read_text())
    return previous


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    if shutil.which("wrk") is None:
        print("wrk is not installed: `make bench` installs it (apt-get install wrk)", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so the labs' finally blocks stop their servers
    plan = QUICK if args.quick else FULL
    previous = _load_previous(args.output, args.sections)
    results: dict[str, Any] = {**previous, "errors": previous.get("errors", {})}
    results["meta"] = {**previous.get("meta", {}), "sections_run_at": previous.get("meta", {}).get(
        "sections_run_at", {}), "quick": args.quick, "load_average_start": load_average()}
    started = time.monotonic()
    print(f"guardproxy benchmark suite ({'quick' if args.quick else 'full'}): {', '.join(args.sections)}", flush=True)
    try:
        _run_sections(args, plan, results)
    finally:
        results["meta"].update({
            "finished_at": _now(), "duration_s": time.monotonic() - started, "load_average_end": load_average(),
            "machine": describe(), "command": shlex.join([".venv/bin/python", "benchmarks/suite.py",
                                                          *(argv if argv is not None else sys.argv[1:])]),
            "plan": asdict(plan)})
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(results, indent=1, default=str) + "\n")
        print(f"results: {args.output.relative_to(REPO) if args.output.is_relative_to(REPO) else args.output}")
    if args.readme:
        write_readme(README, results)
        print(f"tables: {README.relative_to(REPO)}")
    for name, error in results["errors"].items():
        print(f"section {name} failed: {error}", file=sys.stderr)
    print(f"done in {(time.monotonic() - started) / 60:.1f} min", flush=True)
    return 1 if results["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
