"""``guardproxy eval``: measure one chain stage of a policy on labelled JSONL data.

The policy is the set's fallback policy (the one named ``default``, else the
first file), as ``guardproxy check`` would load it. Data stays where it is
(``../shared/data`` must never be copied into the repository); the schema is
detected from the first row. Exit codes: 0 figures printed, 2 the policy, the
data or the flags cannot be used (message on stderr).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from guardproxy.config import Settings
from guardproxy.evaluation.datasets import Dataset, DatasetError, Schema, read_dataset
from guardproxy.evaluation.report import RunInfo, report_json, report_text
from guardproxy.evaluation.runner import run_items
from guardproxy.evaluation.scoring import score
from guardproxy.policy import PolicyError, load_policy_set

__all__ = ["run_eval"]

_USES_POSITIVE: tuple[Schema, ...] = ("pii", "topics")


def _fail(message: str) -> int:
    print(f"guardproxy eval: {message}", file=sys.stderr)
    return 2


def _positive_problem(dataset: Dataset, positive: frozenset[str] | None) -> str | None:
    """Why ``--positive`` does not fit this data, if it does not; warns about labels the data never uses."""
    if dataset.schema == "topics" and positive is None:
        topics = ", ".join(sorted(dataset.gold_labels))
        return f"topics data needs --positive TOPIC... (the topics that should fire); topics here: {topics}"
    if positive is None:
        return None
    if dataset.schema not in _USES_POSITIVE:
        return f"--positive applies to pii and topics data; this file is {dataset.schema} data"
    unused = sorted(positive - dataset.gold_labels)
    if unused:
        print(f"guardproxy eval: warning: --positive {', '.join(unused)} does not occur in the data "
              f"(labels here: {', '.join(sorted(dataset.gold_labels))})", file=sys.stderr)
    return None


def run_eval(args: argparse.Namespace) -> int:
    """Run the chain stage over every row, then print precision, recall, F1, accuracy and latency."""
    if args.positive is not None and not args.positive:
        return _fail("--positive needs at least one label")
    if args.limit is not None and args.limit < 1:
        return _fail("--limit must be at least 1")
    try:
        guard_threads = Settings.from_env(os.environ).guard_threads
    except ValueError as exc:
        return _fail(f"a GUARDPROXY_* environment variable is invalid: {exc}")
    try:
        policies = load_policy_set(args.policy)
    except PolicyError as exc:
        return _fail("the policy cannot be loaded:\n" + "\n".join(exc.problems))
    policy = policies.fallback
    chain = policy.chains.get(args.chain)
    if chain is None:
        return _fail(f"policy {policy.name!r} has no chain named {args.chain!r}; chains are: "
                     f"{', '.join(sorted(policy.chains))}")
    positive = frozenset(args.positive) if args.positive is not None else None
    try:
        dataset = read_dataset(Path(args.data), positive, args.limit, args.stage)
    except DatasetError as exc:
        return _fail(str(exc))
    problem = _positive_problem(dataset, positive)
    if problem is not None:
        return _fail(problem)
    entries = chain.input if args.stage == "input" else chain.output
    if not entries:
        print(f"guardproxy eval: warning: chain {args.chain!r} has no {args.stage} guards; every item passes",
              file=sys.stderr)
    observations = run_items(policy, entries, dataset.items, args.stage, guard_threads)
    scores = score(dataset, observations, positive)
    info = RunInfo(args.data, len(dataset.items), dataset.schema, policies.tag(policy), args.chain, args.stage,
                   sorted(positive) if positive is not None else None, dataset.skipped)
    print(json.dumps(report_json(info, scores), indent=2) if args.json else report_text(info, scores))
    return 0
