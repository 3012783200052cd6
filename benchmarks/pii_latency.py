"""What the PII guard costs: analysis time per message, over a long chat, and through the proxy.

1. ``PiiGuard.scan`` on one ~200 and one ~2,000 character message mixing prose
   and personal data, with the cache off, side by side for ``nlp: ner`` with the
   Rampart model (the default), ``nlp: ner`` with ``names_model: none`` (spaCy +
   patterns) and ``nlp: pattern`` (patterns only).
2. A 20-turn chat in which the client resends the whole history each turn, as
   chat clients do: one ``scan`` per turn over every segment, like the proxy's
   input stage. Without the cache the work grows with the square of the turns;
   with it, each turn analyses only the two messages it has not seen before.
3. Through the proxy (processes, aiohttp, concurrency 1): the p50 a non-streamed
   chat completion gains from the PII input guard, with the cache off and with
   the same message repeated (cache hits).

    .venv/bin/python benchmarks/pii_latency.py [--runs 200] [--long-runs 100] [--requests 200] [--no-proxy]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from itertools import count
from pathlib import Path
from typing import Literal

import aiohttp
from processes import free_port, start, stop_all

from guardproxy.guards.base import GuardContext, Segment
from guardproxy.guards.pii.config import PiiConfig
from guardproxy.guards.pii.defaults import DEFAULT_NAMES_MODEL, NamesModel
from guardproxy.guards.pii.guard import PiiGuard

SHORT = ("Hi, I'm Maria Gonzalez. Send the invoice to maria.gonzalez@brightfield.io or call (415) 555-0182. "
         "Ship to 742 Evergreen Terrace, Springfield, IL 62704; charge card 4111 1111 1111 1111. Thanks!")
LONG = (
    "Hello support team, I am writing on behalf of my father, Thomas Okafor, who cannot use the website since "
    "his stroke last spring. He has been a customer for eleven years and would like to keep the account open, "
    "but several details have changed and the automated form keeps rejecting them. Could you update the record "
    "by hand? His new email address is t.okafor1951@mailbox.org, and the old one at his former employer no "
    "longer works, so please stop sending statements there. The best phone number to reach him is now "
    "+1 (312) 555-0147; if nobody answers, you can call me instead on 773-555-0199 during office hours. "
    "In March he moved into assisted living, so the postal address should become 1180 North Lake Shore "
    "Drive, Apt 6B, Chicago, IL 60611. The building staff collect the mail every morning, which is much "
    "safer than the mailbox at the old house. Regarding payments: the card ending in 0005 has expired, and "
    "he asked me to give you the replacement, 5555 5555 5555 4444, expiry 11/28. Please do not charge the "
    "annual fee until the first of the month, because his pension arrives late this year. I also noticed "
    "two charges in February that neither of us recognises, each for forty-nine dollars, from a merchant "
    "called Northwind Digital. Could someone look into those and tell us whether they can be refunded? "
    "For identity checks, my name is Grace Okafor and I hold power of attorney; the document was signed at "
    "the county office last June and I can send a scan if you tell me where. My own email is "
    "grace.okafor@riverbend-clinic.com. One last thing: a letter from you was addressed to Tom O'Kafor with "
    "an apostrophe, which confused the post office. His legal name has no apostrophe. We would be grateful "
    "for a written confirmation once everything is done, ideally by email rather than by post, and a note "
    "of any reference number we should quote if we need to call again. Thank you for your patience with "
    "all of this; the last few months have been difficult for the family. Kind regards, Grace."
)
FIRST = ["Liam", "Priya", "Jonas", "Aisha", "Mateo", "Chloe", "Kenji", "Fatima", "Oscar", "Ingrid"]
LAST = ["Walsh", "Raman", "Keller", "Bello", "Ruiz", "Dubois", "Tanaka", "Haddad", "Lindqvist", "Moreau"]
STREETS = ["Maple Avenue", "Harbor Road", "Elm Street", "Cedar Lane", "Union Boulevard"]
CITIES = ["Portland, OR 97205", "Austin, TX 78701", "Denver, CO 80202", "Boston, MA 02108", "Tampa, FL 33602"]
SYSTEM = "You are a careful assistant for the customer records team. Confirm each change you make in one short reply."


def percentiles(values: list[float]) -> tuple[float, float]:
    """p50 and p95 in ms (values in seconds)."""
    return statistics.median(values) * 1000, statistics.quantiles(values, n=20, method="inclusive")[18] * 1000


def timed(call: Callable[[], object]) -> tuple[float, float]:
    """Wall-clock and CPU seconds of ``call`` in this thread. The guard runs in the calling thread, so
    CPU time is its cost even when other processes share the cores (wall time then includes waiting)."""
    wall, cpu = time.perf_counter(), time.thread_time()
    call()
    return time.perf_counter() - wall, time.thread_time() - cpu


def new_guard(nlp: Literal["ner", "pattern"], cache_size: int, names_model: NamesModel = DEFAULT_NAMES_MODEL
              ) -> PiiGuard:
    guard = PiiGuard(PiiConfig(nlp=nlp, cache_size=cache_size, names_model=names_model))
    guard.warm()
    return guard


def timed_scan(guard: PiiGuard, texts: list[str]) -> tuple[float, float]:
    """Wall-clock and CPU seconds of one ``scan``."""
    return timed(lambda: guard.scan([Segment(text) for text in texts], GuardContext("input")))


def single_messages(runs: int, long_runs: int) -> None:
    print(f"1. One message, cache off (cache_size=0); {runs} runs at ~200 chars, {long_runs} at ~2,000 chars")
    print("   cpu/1kc: CPU ms per 1,000 characters at the p50")
    print(f"   {'nlp':20} {'chars':>6} {'p50 ms':>8} {'p95 ms':>8} {'cpu p50':>8} {'cpu p95':>8} {'cpu/1kc':>8}"
          "  findings")
    settings: list[tuple[Literal["ner", "pattern"], NamesModel]] = [("ner", "rampart"), ("ner", "none"),
                                                                   ("pattern", "none")]
    for nlp, names_model in settings:
        guard = new_guard(nlp, 0, names_model)
        name = f"{nlp}, {names_model}" if nlp == "ner" else nlp
        for text, n in ((SHORT, runs), (LONG, long_runs)):
            found = Counter(f.label for f in guard.scan([Segment(text)], GuardContext("input")))
            wall, cpu = zip(*(timed_scan(guard, [text]) for _ in range(n)), strict=True)
            (wall_p50, wall_p95), (cpu_p50, cpu_p95) = percentiles(list(wall)), percentiles(list(cpu))
            labels = ", ".join(f"{label} {k}" for label, k in sorted(found.items()))
            print(f"   {name:20} {len(text):6} {wall_p50:8.2f} {wall_p95:8.2f} {cpu_p50:8.2f} {cpu_p95:8.2f} "
                  f"{cpu_p50 / len(text) * 1000:8.2f}  {labels}")


def user_message(turn: int) -> str:
    first, last = FIRST[turn % 10], LAST[(turn * 3) % 10]
    return (f"Next, update the file for {first} {last}: email {first.lower()}.{last.lower()}@example.net, phone "
            f"(617) 555-{1000 + turn * 37:04d}. New address {100 + turn * 11} {STREETS[turn % 5]}, "
            f"{CITIES[turn % 5]}. Is there anything else I should check before the audit?")


def assistant_message(turn: int) -> str:
    first, last = FIRST[turn % 10], LAST[(turn * 3) % 10]
    return (f"Done: {first} {last}'s record now has {first.lower()}.{last.lower()}@example.net and "
            f"(617) 555-{1000 + turn * 37:04d}, and statements go to {100 + turn * 11} {STREETS[turn % 5]}. "
            f"Item {turn} is closed and nothing else changed on the account; the audit can go ahead.")


def conversation(turns: int) -> None:
    print(f"\n2. A {turns}-turn chat, whole history resent each turn, one scan per turn, nlp: ner")
    print(f"   {'cache':14} {'total ms':>9} {'last turn ms':>13} {'segments':>9} {'hits':>6} {'misses':>7}")
    for cache_size in (PiiConfig().cache_size, 0):
        guard = new_guard("ner", cache_size)
        history = [SYSTEM]
        times, segments = [], 0
        for turn in range(1, turns + 1):
            history.append(user_message(turn))
            times.append(timed_scan(guard, history)[0])
            segments += len(history)
            history.append(assistant_message(turn))
        cache = guard._cache
        label = f"size {cache_size}" if cache_size else "off (size 0)"
        print(f"   {label:14} {sum(times) * 1000:9.1f} {times[-1] * 1000:13.2f} {segments:9} "
              f"{cache.hits:6} {cache.misses:7}")


async def chat_latencies(url: str, requests: int, fresh_text: bool) -> list[float]:
    """Seconds per non-streamed completion; ``fresh_text`` makes each message unique (no cache hits)."""
    serial = count()
    latencies = []
    async with aiohttp.ClientSession() as session:
        for i in range(20 + requests):  # the first 20 warm connections and code paths
            text = f"{SHORT} Ref {next(serial)}." if fresh_text else SHORT
            body = {"model": "demo", "messages": [{"role": "user", "content": text}]}
            started = time.perf_counter()
            async with session.post(url, json=body) as response:
                await response.read()
                if response.status != 200:
                    raise RuntimeError(f"{url} answered {response.status}")
            if i >= 20:
                latencies.append(time.perf_counter() - started)
    return latencies


def through_proxy(requests: int) -> None:
    print(f"\n3. Through the proxy, non-streamed, concurrency 1, {requests} requests, ~200-char message")
    policies = {
        "no guards": "{}",
        "pii input, cache off": "{input: [{guard: pii, action: redact, cache_size: 0}]}",
        "pii input, cached": "{input: [{guard: pii, action: redact}]}",
    }
    processes: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory() as tmp:
        upstream_port = free_port()
        upstream = f"http://127.0.0.1:{upstream_port}/v1"
        try:
            processes.append(start(["-m", "guardproxy.demo", "--port", str(upstream_port)], upstream + "/models"))
            urls = {}
            for index, (name, chain) in enumerate(policies.items()):
                policy = Path(tmp) / f"p{index}.yaml"
                policy.write_text(f"version: 1\nname: p{index}\nchains: {{default: {chain}}}\n")
                port = free_port()
                processes.append(start(["-m", "guardproxy", "serve", "--upstream", upstream, "--policy",
                                        str(policy), "--port", str(port)], f"http://127.0.0.1:{port}/readyz"))
                urls[name] = f"http://127.0.0.1:{port}/v1/chat/completions"
            print(f"   {'target':22} {'p50 ms':>8} {'p95 ms':>8} {'+p50 ms':>8}")
            base = None
            for name, url in urls.items():
                p50, p95 = percentiles(asyncio.run(chat_latencies(url, requests, name != "pii input, cached")))
                added = "" if base is None else f"{p50 - base:8.2f}"
                base = p50 if base is None else base
                print(f"   {name:22} {p50:8.2f} {p95:8.2f} {added}")
        finally:
            stop_all(processes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=200, help="runs per ~200-char measurement")
    parser.add_argument("--long-runs", type=int, default=100, help="runs per ~2,000-char measurement")
    parser.add_argument("--turns", type=int, default=20)
    parser.add_argument("--requests", type=int, default=200, help="requests per proxy target")
    parser.add_argument("--no-proxy", action="store_true", help="skip part 3")
    args = parser.parse_args()
    single_messages(args.runs, args.long_runs)
    conversation(args.turns)
    if not args.no_proxy:
        through_proxy(args.requests)


if __name__ == "__main__":
    main()
