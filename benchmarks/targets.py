"""The issue's targets, checked against a run's results: each with its measured value, its
limit and pass or fail (``None`` when the sections it needs were not run or were skipped)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Check = dict[str, Any]


def _derived(results: dict[str, Any], target: str, stream: bool) -> dict[str, Any]:
    rows = (results.get("passthrough") or {}).get("derived", [])
    return next((r for r in rows if r["target"] == target and r["stream"] == stream), {})


def _check(name: str, value: float | None, limit: float, fmt: Callable[[float], str], at_most: bool = True,
           limit_text: str | None = None) -> Check:
    passed = None if value is None else (value <= limit if at_most else value >= limit)
    return {"target": name, "measured": "not measured" if value is None else fmt(value),
            "limit": limit_text or ("≤ " if at_most else "≥ ") + fmt(limit), "passed": passed}


def _ms(value: float) -> str:
    return f"{value:.2f} ms"


def _passthrough(results: dict[str, Any]) -> list[Check]:
    checks = []
    for stream in (False, True):
        mode = "streamed" if stream else "non-streamed"
        row = _derived(results, "guardproxy (no guards)", stream)
        reference = _derived(results, "reference (aiohttp)", stream).get("added_p50_c1_ms")
        added = _check(f"pass-through added p50 at c=1, {mode}", row.get("added_p50_c1_ms"), 0.4, _ms)
        if reference is not None:
            added["reference"] = _ms(reference)
        checks += [
            added,
            _check(f"c=16 throughput vs reference (aiohttp), {mode}", row.get("c16_pct_of_reference"), 75,
                   lambda v: f"{v:.0f} %", at_most=False),
            _check(f"c=16 throughput vs LiteLLM, {mode}", row.get("c16_x_litellm"), 10, lambda v: f"{v:.1f}×",
                   at_most=False),
            _check(f"p99 at c=64 vs reference (aiohttp), {mode}", row.get("p99_c64_x_reference"), 2,
                   lambda v: f"{v:.2f}×"),
        ]
    return checks


def _blocked(row: dict[str, Any]) -> str:
    failed = row["failed"]
    return f" ({failed} of {row['requests']} answered other than 200)" if failed else ""


def _guards(results: dict[str, Any]) -> list[Check]:
    sizes = {row["chars"]: row for row in (results.get("guards") or {}).get("sizes", [])}
    added = {chars: row["added_p50"] for chars, row in sizes.items()}
    checks = []
    for chars, limit in ((200, 12), (2000, 40)):
        check = _check(f"full policy, {chars:,}-char prompt, added p50", added.get(chars), limit, _ms)
        if chars in sizes:
            check["measured"] += _blocked(sizes[chars])
        checks.append(check)
    keyword = {row["chars"]: row for row in (results.get("guards") or {}).get("sizes_keyword_topics", [])}
    for chars, limit in ((200, 12), (2000, 40)):
        row = keyword.get(chars)
        check = _check(f"full policy with topics by keywords, {chars:,}-char prompt, added p50",
                       row["added_p50"] if row else None, limit, _ms)
        if row:
            check["measured"] += _blocked(row)
        checks.append(check)
    conversation = (results.get("guards") or {}).get("conversation")
    if conversation and 200 in added:
        limit = conversation["turn_1"] + added[200]
        checks.append(_check(f"conversation turn {conversation['turns']} added", conversation["turn_last"], limit, _ms,
                             limit_text=f"≤ turn 1 + one new message: {conversation['turn_1']:.2f} + "
                                        f"{added[200]:.2f} = {limit:.2f} ms"))
    else:
        checks.append(_check("conversation turn 20 added", None, 0, _ms, limit_text="≤ turn 1 + one new message"))
    return checks


def _ttft(results: dict[str, Any]) -> list[Check]:
    rows = {row["target"]: row for row in (results.get("ttft") or {}).get("rows", [])}
    bare = rows.get("guardproxy (no guards)", {})
    pii = rows.get("guardproxy (output PII only)", {})
    checks = [_check("TTFT added p50, no output guards", bare.get("added_p50"), 1, _ms)]
    if "added_p50" in rows.get("reference (aiohttp)", {}):
        checks[0]["reference"] = _ms(rows["reference (aiohttp)"]["added_p50"])
    if "window_word_ms" in pii:
        limit = pii["window_word_ms"] + 1
        checks.append(_check("TTFT added p50, output PII guard", pii["added_p50"], limit, _ms,
                             limit_text=f"≤ hold-back window + 1 ms: {pii['window_word_ms']:.2f} + 1 = {limit:.2f} ms"))
    else:
        checks.append(_check("TTFT added p50, output PII guard", None, 0, _ms, limit_text="≤ hold-back window + 1 ms"))
    return checks


def _memory(results: dict[str, Any]) -> list[Check]:
    full = [row["after_mib"] for row in (results.get("memory") or {}).get("rows", []) if row["policy"] == "full"]
    full += [row["after_mib"] for row in (results.get("workers") or {}).get("memory", []) if row["policy"] == "full"]
    return [_check("RSS per worker, full policy, after load", max(full) if full else None, 400,
                   lambda v: f"{v:.0f} MiB")]


def evaluate(results: dict[str, Any]) -> list[Check]:
    return [*_passthrough(results), *_guards(results), *_ttft(results), *_memory(results)]
