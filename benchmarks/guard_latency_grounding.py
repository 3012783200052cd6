"""What ``guard: grounding`` (method: signals) costs per answer: a 300-character answer (about three
sentences) checked against a 1,000-character context (``--context-chars`` for another size).

``fresh``: every run has a context the guard has not seen (spaCy and MiniLM run on the whole
context: the first answer of a conversation). ``cached``: the same context with a new answer every
run (the context analysis is reused: a later answer, or several segments, on the same documents).
Texts are generated from a fixed vocabulary, so runs are comparable across machines.

    .venv/bin/python benchmarks/guard_latency_grounding.py [--runs 200] [--context-chars 1000]
"""

from __future__ import annotations

import argparse
import random
import time

from guardproxy.guards.base import GuardContext, Segment
from guardproxy.guards.grounding.config import GroundingConfig
from guardproxy.guards.grounding.guard import GroundingGuard

NAMES = ["Marie Curie", "the Danube", "Lisbon", "the Royal Society", "Ada Lovelace", "Mount Kenya", "the Senate"]
VERBS = ["was founded in", "was described in", "moved to", "was rebuilt in", "reported on", "was visited by"]
NOUNS = ["the harbour", "a new museum", "the northern railway", "the old library", "the summer festival"]


def sentence(generator: random.Random) -> str:
    return (f"{generator.choice(NAMES).capitalize()} {generator.choice(VERBS)} {generator.choice(NOUNS)} "
            f"in {generator.randint(1800, 2020)}, with {generator.randint(2, 900)} people.")


def text_of(generator: random.Random, chars: int) -> str:
    parts: list[str] = []
    while sum(len(p) + 1 for p in parts) < chars:
        parts.append(sentence(generator))
    return " ".join(parts)[:chars]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--context-chars", type=int, default=1000)
    args = parser.parse_args()
    guard = GroundingGuard(GroundingConfig())
    guard.warm()
    generator = random.Random(1)
    chars = args.context_chars
    shared_context = text_of(generator, chars)
    print("| case | context chars | answer chars | p50 ms | p95 ms |")
    print("|---|---:|---:|---:|---:|")
    for case in ("fresh", "cached"):
        timings = []
        for _ in range(args.runs):
            context = text_of(generator, chars) if case == "fresh" else shared_context
            answer = text_of(generator, 300)
            started = time.perf_counter()
            guard.scan([Segment(answer, ("choices", 0, "message", "content"), "assistant")],
                       GuardContext("output", documents=(context,)))
            timings.append((time.perf_counter() - started) * 1000)
        print(f"| {case} | {chars} | 300 | {percentile(timings, 0.5):.1f} | {percentile(timings, 0.95):.1f} |")


if __name__ == "__main__":
    main()
