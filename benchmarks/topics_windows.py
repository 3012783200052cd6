"""``window_embedding: composed`` against ``encoded`` for the semantic topics guard: cost and quality.

Cost: scan time (findings cache off, embedding cache off) for prompts of 200, 2,000 and 8,000
characters of ``prose.Prose`` (everyday sentences, none on a banned topic), one core.

Quality: the shipped pair-A policy (``policies/examples/topics.yaml``: banking + travel) on
multi-sentence messages built from ``../shared/data/topics_dev.jsonl``: each message joins 2 to 5
random queries as sentences (fixed seed), and is positive when any of them is from a banned domain.
A one-query text has no windows, so both settings give it the same score; this measures only what
the setting changes. Skipped cleanly when the data is absent.

    taskset -c 1 .venv/bin/python benchmarks/topics_windows.py [--messages 600] [--seed 7]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from pathlib import Path
from typing import Any

import yaml
from prose import Prose

from guardproxy.evaluation.scoring import Confusion
from guardproxy.guards.base import GuardContext, Segment
from guardproxy.guards.topics.config import TopicsConfig
from guardproxy.guards.topics.guard import TopicsGuard

REPO = Path(__file__).resolve().parent.parent
DATA = REPO.parent / "shared" / "data" / "topics_dev.jsonl"
POLICY = REPO / "policies" / "examples" / "topics.yaml"
CONTEXT = GuardContext("input")


def topics_entry() -> dict[str, Any]:
    entry: dict[str, Any] = yaml.safe_load(POLICY.read_text())["chains"]["default"]["input"][0]
    return entry


def guard(mode: str, cache: int) -> TopicsGuard:
    entry = topics_entry()
    config = TopicsConfig(topics=entry["topics"], window_embedding=mode, cache_size=cache)  # type: ignore[arg-type]
    topics = TopicsGuard(config)
    topics.warm()
    return topics


def cost(modes: list[str], repeats: int) -> None:
    prose = Prose(11)
    guards = {mode: guard(mode, 0) for mode in modes}
    print(f"{'chars':>6} " + " ".join(f"{mode + ' p50 ms':>18}" for mode in modes))
    for chars in (200, 2000, 8000):
        texts = [prose.text(chars) for _ in range(repeats)]
        timings: dict[str, list[float]] = {mode: [] for mode in modes}
        for text in texts:
            for mode in modes:
                started = time.perf_counter()
                guards[mode].scan([Segment(text, (), "user")], CONTEXT)
                timings[mode].append((time.perf_counter() - started) * 1000)
        print(f"{chars:>6} " + " ".join(f"{statistics.median(timings[mode]):>18.1f}" for mode in modes))


def quality(modes: list[str], messages: int, seed: int) -> None:
    if not DATA.exists():
        print(f"quality skipped: {DATA} not found (the shared data lives outside the repository)")
        return
    rows = [json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines() if line.strip()]
    banned = {"banking", "travel"}
    rng = random.Random(seed)
    built: list[tuple[str, bool]] = []
    for _ in range(messages):
        picked = rng.sample(rows, rng.randint(2, 5))
        text = " ".join(row["text"].strip().capitalize().rstrip("?.!") + rng.choice([".", "?", "!"]) for row in picked)
        built.append((text, any(row["topic"] in banned for row in picked)))
    print(f"\n{messages} messages of 2-5 queries (seed {seed}), {sum(p for _, p in built)} positive")
    print(f"{'window_embedding':<18} {'tp':>5} {'fp':>5} {'fn':>5} {'precision':>9} {'recall':>6} {'f1':>6}")
    fired: dict[str, list[bool]] = {}
    for mode in modes:
        topics = guard(mode, 4096)
        tally = Confusion()
        fired[mode] = []
        for text, positive in built:
            hit = bool(topics.scan([Segment(text, (), "user")], CONTEXT))
            fired[mode].append(hit)
            tally.count(positive, hit)
        print(f"{mode:<18} {tally.tp:>5} {tally.fp:>5} {tally.fn:>5} {tally.precision or 0:>9.3f} "
              f"{tally.recall or 0:>6.3f} {tally.f1 or 0:>6.3f}")
    if len(modes) == 2:
        differ = sum(a != b for a, b in zip(fired[modes[0]], fired[modes[1]], strict=True))
        print(f"messages decided differently: {differ} of {messages}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=600)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    modes = ["composed", "encoded"]
    cost(modes, args.repeats)
    quality(modes, args.messages, args.seed)


if __name__ == "__main__":
    main()
