"""Section 3: time to first token of streams, and what an output guard's hold-back costs.

A second upstream paces its stream (20 ms between events, ~10 characters
each), so a hold-back window shows as it would in front of a real model. Only
the first ``PACED_EVENTS`` are paced and the rest follow at once: time to first
token is decided early, and the run need not wait out every answer. At
concurrency 1, each row times the first SSE event that carries content. The
direct rows also give the hold-back window's own need: how long after the
first content the upstream has sent ``hold_back_chars`` characters, and how long
until the first word and ``hold_back_chars`` characters after it have arrived,
the earliest a word-snapped release can let the first word go.
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

import yaml
from chat_client import Client, percentile, run, user_body
from plan import Plan
from prose import Prose
from servers import REPO, Lab, Server

CHUNK_DELAY_MS = 20
PACED_EVENTS = 10  # the role event and 9 content events (~95 characters)
POLICIES = REPO / "benchmarks" / "policies"
WARMUP = 5


def hold_back_chars(policy: Path) -> int:
    """``stream.hold_back_chars`` of a policy file (of ``default.yaml`` for a directory)."""
    path = policy / "default.yaml" if policy.is_dir() else policy
    return int(((yaml.safe_load(path.read_text()) or {}).get("stream") or {}).get("hold_back_chars", 64))


def windows(events: list[tuple[float, str]], hold: int) -> tuple[float, float]:
    """For one direct stream, in ms after its first content: when ``hold`` characters had arrived,
    and when the first word plus ``hold`` characters after it had. Raises if that was not within
    the paced events, where the times would be the burst's, not the pace's."""
    text = "".join(piece for _, piece in events)
    first_space = next((i for i, ch in enumerate(text) if ch.isspace()), len(text))
    chars_at = word_at = None
    received = 0
    for index, (arrived, piece) in enumerate(events):
        received += len(piece)
        if chars_at is None and received >= hold:
            chars_at = arrived
        if word_at is None and received >= first_space + 1 + hold:
            word_at = arrived
            if index >= PACED_EVENTS - 1:
                raise RuntimeError(f"hold_back_chars {hold} needs more than the {PACED_EVENTS} paced events")
    if chars_at is None or word_at is None:
        raise RuntimeError(f"the stream is shorter than hold_back_chars {hold}")
    return chars_at - events[0][0], word_at - events[0][0]


def _targets(lab: Lab) -> dict[str, tuple[Server, int | None]]:
    upstream = lab.upstream("upstream-paced", chunk_delay_ms=CHUNK_DELAY_MS, paced_events=PACED_EVENTS)
    default = REPO / "policies"
    output_pii = POLICIES / "output_pii.yaml"
    return {
        "direct": (upstream, None),
        "reference (aiohttp)": (lab.reference("aiohttp", upstream, key="reference-paced"), None),
        "guardproxy (no guards)": (lab.guardproxy("gp-none-paced", POLICIES / "no_guards.yaml", upstream), None),
        "guardproxy (output PII only)": (lab.guardproxy("gp-pii-paced", output_pii, upstream),
                                         hold_back_chars(output_pii)),
        "guardproxy (default policy)": (lab.guardproxy("gp-default-paced", default, upstream),
                                        hold_back_chars(default)),
    }


async def _measure(client: Client, url: str, prose: Prose, requests: int) -> dict[str, Any]:
    ttfts: list[float] = []
    totals: list[float] = []
    failures = 0
    streams: list[list[tuple[float, str]]] = []
    for index in range(WARMUP + requests):
        status, events = await client.stream(url, user_body(prose.text(60), stream=True))
        if index < WARMUP:
            continue
        if status != 200 or not events:
            failures += 1
            continue
        ttfts.append(events[0][0])
        totals.append(events[-1][0])
        streams.append(events)
    return {"ttfts": ttfts, "totals": totals, "failures": failures, "streams": streams}


def run_section(lab: Lab, plan: Plan) -> dict[str, Any]:
    targets = _targets(lab)
    prose = Prose(plan.seed + 3)
    rows: list[dict[str, Any]] = []
    direct_streams: list[list[tuple[float, str]]] = []
    for name, (server, hold) in targets.items():
        url = server.url + "/v1/chat/completions"
        measured = run(lambda client, url=url: _measure(client, url, prose, plan.ttft_requests))
        server.loaded_by.append("ttft")
        if name == "direct":
            direct_streams = measured["streams"]
        ttfts = measured["ttfts"]
        rows.append({"target": name, "hold_back_chars": hold, "requests": len(ttfts),
                     "failures": measured["failures"], "ttft_p50": statistics.median(ttfts),
                     "ttft_p99": percentile(ttfts, 0.99), "total_p50": statistics.median(measured["totals"])})
        print(f"  {name:30} TTFT p50 {rows[-1]['ttft_p50']:7.2f} ms  p99 {rows[-1]['ttft_p99']:7.2f} ms  "
              f"failures {measured['failures']}", flush=True)
    base = rows[0]
    for row in rows:
        row["added_p50"] = row["ttft_p50"] - base["ttft_p50"]
        row["added_p99"] = row["ttft_p99"] - base["ttft_p99"]
        if row["hold_back_chars"] and direct_streams:
            pairs = [windows(events, row["hold_back_chars"]) for events in direct_streams]
            row["window_chars_ms"] = statistics.median(p[0] for p in pairs)
            row["window_word_ms"] = statistics.median(p[1] for p in pairs)
    events = direct_streams[0] if direct_streams else []
    return {"rows": rows, "chunk_delay_ms": CHUNK_DELAY_MS, "paced_events": PACED_EVENTS,
            "content_events": len(events),
            "content_chars": sum(len(piece) for _, piece in events)}
