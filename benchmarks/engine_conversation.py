"""What a chat's resent history costs: turn 1 vs turn 20 of a conversation through ``Engine.run``.

Chat clients resend the whole conversation every turn. Each turn here runs the
input chain over the system message and every message so far (the default
policy's input chain plus the semantic ``topics`` guard from
``policies/examples/topics.yaml``), then the output chain over the new answer
(non-streamed), which joins the history for the next turn. Messages are
~200-character prose with some personal data; every conversation carries its
own number in each message, so nothing is cached from an earlier one.

Reported per turn: the input stage's wall time and CPU time (process CPU, all
threads; medians over ``--conversations``), with the engine's findings cache on
(the default) and off (``findings_cache_size=0``: only the PII guard's own
detection cache and the embedding caches remain). The target: turn 20 costs
about what turn 1 does, plus its one new message.

    .venv/bin/python benchmarks/engine_conversation.py [--conversations 5] [--turns 20]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import itertools
import statistics
import time
from pathlib import Path

from guardproxy.engine import Engine
from guardproxy.guards import GuardContext, Segment
from guardproxy.policy.loader import load_policy_set
from guardproxy.policy.schema import GuardEntry, Policy

POLICIES = Path(__file__).resolve().parent.parent / "policies"
SYSTEM = "You are a friendly gardening assistant. Answer in a few sentences and ask when something is unclear."
QUESTIONS = (
    "My name is Elena Petrova and I just moved into a flat with a small balcony facing west. What could I grow",
    "The balcony gets about five hours of sun in the afternoon. Would tomatoes cope with that, or is it too little",
    "I found some old terracotta pots in the cellar. Do they need any treatment before I plant into them again",
    "My neighbour Tom says coffee grounds are great for everything. Is that true, or is it a garden myth",
    "Which herbs go well together in one long planter, and which ones should I keep apart from the others",
    "You can send the seed list to elena.petrova@example.org later, but first: when should I sow basil indoors",
    "Some of my seedlings are tall and floppy. Is that the light, the warmth, or did I water them too much",
)
ANSWERS = (
    "A west-facing balcony suits herbs, salad leaves and compact tomatoes; start small and see what thrives there",
    "Five hours is enough for cherry tomatoes in a large pot; pick an early variety and feed it every two weeks",
    "Scrub them with hot water and a little vinegar, soak them for a day, and let them dry before you plant them",
    "Coffee grounds are fine in compost, but on their own they can clump and repel water; use them sparingly",
    "Thyme, sage and rosemary like it dry and can share; keep basil and parsley together where you water more",
    "Sow basil indoors about six weeks before the last frost, in warm soil, and cover the seeds only very lightly",
    "Leggy seedlings usually want more light; move them closer to the window and keep them a little cooler",
)
CONVERSATIONS = itertools.count()


def conversation(turns: int) -> list[tuple[str, str]]:
    number = next(CONVERSATIONS)
    return [(f"(chat {number}, turn {t + 1}) {QUESTIONS[t % len(QUESTIONS)]}?",
             f"(chat {number}, answer {t + 1}) {ANSWERS[t % len(ANSWERS)]}.") for t in range(turns)]


def load_chains() -> tuple[Policy, list[GuardEntry], list[GuardEntry]]:
    default = load_policy_set(POLICIES / "default.yaml").policies[0].policy
    topics = load_policy_set(POLICIES / "examples" / "topics.yaml").policies[0].policy
    chain = default.chains["default"]
    return default, [*chain.input, *topics.chains["default"].input], list(chain.output)


Chains = tuple[Policy, list[GuardEntry], list[GuardEntry]]


async def one_conversation(engine: Engine, chains: Chains, turns: int) -> list[tuple[float, float]]:
    """(wall, cpu) seconds of each turn's input stage."""
    policy, input_chain, output_chain = chains
    history = [Segment(SYSTEM, ("messages", 0, "content"), "system")]
    costs = []
    for question, answer in conversation(turns):
        history.append(Segment(question, ("messages", len(history), "content"), "user"))
        cpu, started = time.process_time(), time.perf_counter()
        await engine.run(policy, input_chain, history, GuardContext("input"))
        costs.append((time.perf_counter() - started, time.process_time() - cpu))
        await engine.run(policy, output_chain, [Segment(answer, ("choices", 0, "message", "content"), "assistant")],
                         GuardContext("output"))
        history.append(Segment(answer, ("messages", len(history), "content"), "assistant"))
    return costs


async def main_async(args: argparse.Namespace) -> None:
    chains = load_chains()
    policy, input_chain, _ = chains
    print(f"input stage per turn, ms; medians of {args.conversations} conversations")
    print(f"{'cache':<6} {'turn':>4} {'segments':>8} {'wall':>8} {'cpu':>8}")
    for label, size in (("on", 4096), ("off", 0)):
        engine = Engine(findings_cache_size=size)
        engine.prepare([policy])
        for entry in input_chain:
            engine.guard_for(entry).warm()
        await one_conversation(engine, chains, 2)  # warm
        runs = []
        for _ in range(args.conversations):
            gc.collect()  # so that no conversation pays for collecting the previous one's garbage
            runs.append(await one_conversation(engine, chains, args.turns))
        for turn in sorted({0, 1, 4, 9, args.turns - 1}):
            wall = statistics.median(r[turn][0] for r in runs) * 1000
            cpu = statistics.median(r[turn][1] for r in runs) * 1000
            print(f"{label:<6} {turn + 1:>4} {2 * turn + 2:>8} {wall:>8.2f} {cpu:>8.2f}", flush=True)
        engine.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--conversations", type=int, default=5)
    parser.add_argument("--turns", type=int, default=20)
    asyncio.run(main_async(parser.parse_args()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
