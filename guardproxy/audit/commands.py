"""The audit trail's commands: ``guardproxy replay``, ``review`` and ``report``.

Each reads a trail (a file and its rotated predecessors, oldest first) and never writes to it.
Exit codes: 0 done, 2 the policy, the trail or a flag cannot be used (the message, on stderr,
names the file and line). Heavy imports (the engine, guards) happen inside the commands so that
``guardproxy --help`` stays fast.
"""

from __future__ import annotations

import argparse
import sys

COMMANDS = ("replay", "review", "report")


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the three subcommands to the ``guardproxy`` parser."""
    replay = commands.add_parser("replay", help="re-run a policy over an audit trail's texts and show what changes")
    replay.add_argument("--policy", required=True, help="the policy to replay: a file or a directory of *.yaml")
    replay.add_argument("--audit", required=True, metavar="FILE",
                        help="the audit trail (its rotated files are read too)")
    replay.add_argument("--json", action="store_true", help="print the counts as one JSON object")
    replay.add_argument("--examples", type=int, default=10, metavar="N", help="show up to N changed request ids")
    review = commands.add_parser("review", help="export blocked, redacted and flagged records for people to label")
    review.add_argument("--audit", required=True, metavar="FILE")
    review.add_argument("--out", required=True, metavar="FILE.jsonl", help="where the review rows go")
    report = commands.add_parser("report", help="render an audit trail as a self-contained HTML page")
    report.add_argument("--audit", required=True, metavar="FILE")
    report.add_argument("--html", required=True, metavar="OUT.html")
    report.add_argument("--bucket", default="1h",
                        help="time bucket of the violations chart: 15m, 1h, 1d... (default 1h)")


def run_command(args: argparse.Namespace) -> int:
    if args.command == "replay":
        return cmd_replay(args)
    if args.command == "review":
        return cmd_review(args)
    return cmd_report(args)


def _fail(command: str, message: str) -> int:
    print(f"guardproxy {command}: {message}", file=sys.stderr)
    return 2


def cmd_replay(args: argparse.Namespace) -> int:
    import asyncio
    import json
    import os

    from guardproxy.audit.record import RecordError
    from guardproxy.audit.replay import replay_trail, summary_text
    from guardproxy.audit.trail import read_trail
    from guardproxy.config import Settings
    from guardproxy.engine import Engine
    from guardproxy.policy import PolicyError, load_policy_set

    if args.examples < 0:
        return _fail("replay", "--examples must be 0 or more")
    try:
        policies = load_policy_set(args.policy)
    except PolicyError as exc:
        return _fail("replay", "the policy cannot be loaded:\n" + "\n".join(exc.problems))
    try:
        guard_threads = Settings.from_env(os.environ).guard_threads
    except ValueError as exc:
        return _fail("replay", f"a GUARDPROXY_* environment variable is invalid: {exc}")
    engine = Engine(guard_threads=guard_threads)
    try:
        try:
            engine.prepare([item.policy for item in policies.policies])
        except Exception as exc:  # a guard that cannot be built: say which, not a traceback
            return _fail("replay", f"the policy's guards cannot be built: {type(exc).__name__}: {exc}")
        summary = asyncio.run(replay_trail(engine, policies, read_trail(args.audit), args.examples))
    except (RecordError, OSError, UnicodeDecodeError) as exc:
        return _fail("replay", f"the audit trail cannot be read: {exc}")
    finally:
        engine.close()
    if args.json:
        print(json.dumps(summary.to_json(), ensure_ascii=False, indent=2))
    else:
        print(summary_text(summary, f"{policies.fallback.name}@{policies.digest}", args.audit))
    return 0


def cmd_review(args: argparse.Namespace) -> int:
    from guardproxy.audit.record import RecordError
    from guardproxy.audit.review import write_review
    from guardproxy.audit.trail import read_trail

    try:
        counts = write_review(read_trail(args.audit), args.out)
    except (RecordError, UnicodeDecodeError) as exc:
        return _fail("review", f"the audit trail cannot be read: {exc}")
    except OSError as exc:
        return _fail("review", f"{exc.filename or args.out}: {exc.strerror or exc}")
    print(f"{args.out}: {counts.rows} rows to review from {counts.exported} of {counts.records} records "
          "(blocked, redacted or flagged)")
    if counts.without_text:
        print(f"{counts.without_text} rows have no text (text: null): the trail stored none for them; a policy "
              "with audit: {text: redacted} stores it")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from pathlib import Path

    from guardproxy.audit.report import bucket_seconds, render_report, summarize
    from guardproxy.audit.trail import read_trail

    try:
        bucket = bucket_seconds(args.bucket)
    except ValueError as exc:
        return _fail("report", str(exc))
    try:
        summary = summarize(read_trail(args.audit), bucket)
    except ValueError as exc:  # a RecordError, or a time that is not RFC 3339
        return _fail("report", f"the audit trail cannot be read: {exc}")
    except OSError as exc:
        return _fail("report", f"{exc.filename or args.audit}: {exc.strerror or exc}")
    try:
        Path(args.html).write_text(render_report(summary, args.audit), encoding="utf-8")
    except OSError as exc:
        return _fail("report", f"{args.html}: {exc.strerror or exc}")
    period = " to ".join(moment.strftime("%Y-%m-%d %H:%M:%S UTC") for moment in (summary.first, summary.last)
                         if moment is not None) or "no records"
    print(f"{args.html}: report of {summary.records} records ({period})")
    return 0
