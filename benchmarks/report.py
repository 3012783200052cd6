"""The results as markdown tables, written into benchmarks/README.md between two marker
comments, so that each full run replaces the figures and leaves the prose around them."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from targets import evaluate

START = "<!-- bench:results:start (written by benchmarks/suite.py; edits here are overwritten) -->"
END = "<!-- bench:results:end -->"


def _f(value: Any, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:,.{digits}f}" if isinstance(value, float) else str(value)


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return [*lines, ""]


def _machine(results: dict[str, Any]) -> list[str]:
    meta = results["meta"]
    machine = meta["machine"]
    versions = ", ".join(f"{name} {version}" for name, version in machine["versions"].items())
    sections = ", ".join(f"{name} ({when})" for name, when in meta["sections_run_at"].items())
    loads = [", ".join(map(str, meta[key])) for key in ("load_average_start", "load_average_end")]
    others = ", ".join(f"{name} {_f((results.get(name) or {}).get('others_cores'))}"
                       for name in meta["sections_run_at"])
    return [
        f"Run of {meta['finished_at']} ({'quick' if meta['quick'] else 'full'}; {meta['duration_s'] / 60:.1f} min), "
        f"sections {sections}.", "",
        f"**Machine**: {machine['cpu']}, {machine['cores']} cores, {machine['memory_gib']} GiB, Linux "
        f"{machine['kernel']}, Python {machine['python']}; {versions}.", "",
        f"**Quiet?** Load average {loads[0]} at the start, {loads[1]} at the end. CPU used by other processes "
        f"on the machine during each section, in cores of {machine['cores']}: {others}.", "",
    ]


def _targets(results: dict[str, Any]) -> list[str]:
    marks = {True: "pass", False: "**FAIL**", None: "not measured"}
    rows = [[c["target"], c["measured"], c["limit"], marks[c["passed"]], c.get("reference", "–")]
            for c in evaluate(results)]
    return ["### Targets", "",
            "The last column is what the raw-ASGI reference relay (no guards, no telemetry, no parsing) measured in "
            "the same run, where the target has a counterpart: the floor this machine sets.", "",
            *_table(["target", "measured", "limit", "result", "reference (aiohttp), same run"], rows)]


def _passthrough(section: dict[str, Any]) -> list[str]:
    rows = [[r["target"], "stream" if r["stream"] else "json", r["concurrency"], _f(r["rps"], 0), _f(r["p50"], 3),
             _f(r["p99"], 3), _f(r["max"], 2), r["requests"], _f(r.get("others_cores")),
             "" if not r["error_count"] else f"**{r['error_count']} errors** {r['errors']}"] for r in section["rows"]]
    derived = [[d["target"], "stream" if d["stream"] else "json", _f(d.get("added_p50_c1_ms"), 3),
                _f(d.get("c16_pct_of_reference"), 0), _f(d.get("c16_x_litellm"), 1),
                _f(d.get("p99_c64_x_reference"), 2)] for d in section["derived"] if d["target"] != "direct"]
    lines = ["### Pass-through", "",
             f"wrk, one thread; latency in ms to the last byte; the median of {section.get('rounds', 1)} rounds in "
             "which the targets took turns (max: the worst round). \"others\": cores used by other processes on "
             "the machine during the target's runs.", "",
             *_table(["target", "mode", "c", "req/s", "p50", "p99", "max", "requests", "others", "errors"], rows),
             *_table(["target", "mode", "added p50 at c=1 (ms)", "c=16 req/s, % of reference", "× LiteLLM",
                      "p99 at c=64 / reference"], derived)]
    if "litellm_rss_after_mib" in section:
        lines += [f"LiteLLM's process: {section['litellm_rss_idle_mib']:.0f} MiB idle, "
                  f"{section['litellm_rss_after_mib']:.0f} MiB after its load.", ""]
    lines += [f"Note: {note}" for note in section.get("notes", [])]
    return lines


def _ttft(section: dict[str, Any]) -> list[str]:
    rows = [[r["target"], r["requests"], _f(r["ttft_p50"]), _f(r["ttft_p99"]), _f(r["added_p50"]), _f(r["added_p99"]),
             _f(r.get("window_chars_ms")), _f(r.get("window_word_ms")), _f(r["total_p50"], 1), r["failures"]]
            for r in section["rows"]]
    return ["### Time to first token (streams)", "",
            f"The upstream streams {section['content_events']} content events ({section['content_chars']} characters); "
            f"its first {section['paced_events']} events (a role event, then content) come "
            f"{section['chunk_delay_ms']} ms apart, the rest at once. One stream at a time; ms. The windows are what "
            "the upstream's pace alone makes a hold-back wait, measured on the direct streams.", "",
            *_table(["target", "streams", "TTFT p50", "TTFT p99", "added p50", "added p99",
                     "window: hold-back chars sent", "window: first word + hold-back sent", "whole stream p50",
                     "failures"], rows)]


def _guards(section: dict[str, Any]) -> list[str]:
    rows = [[f"{r['chars']:,}", *_added_cells(r)] for r in section["sizes"]]
    talk = section["conversation"]
    series = ", ".join(f"{v:.1f}" for v in talk["added_per_turn_ms"])
    keyword_rows = [[f"{r['chars']:,}", *_added_cells(r)] for r in section.get("sizes_keyword_topics", [])]
    keyword_table = (["The same policy with its topics guard matching keywords (`method: keywords`) instead of "
                      "embeddings (`benchmarks/policies/full_keyword_topics.yaml`):", "",
                      *_table(["prompt chars", *ADDED_HEADER], keyword_rows)] if keyword_rows else [])
    return ["### Cost of guards (full policy against no guards, one request at a time)", "",
            *_table(["prompt chars", *ADDED_HEADER], rows), *keyword_table,
            f"Conversation ({talk['conversations']} conversations of {talk['turns']} turns, median per turn): "
            f"turn 1 adds {talk['turn_1']:.2f} ms, turn {talk['turns']} adds {talk['turn_last']:.2f} ms, "
            f"difference {talk['growth']:+.2f} ms; {talk['failures']} requests answered other than 200. "
            f"Per turn: {series}.", ""]


ADDED_HEADER = ["requests", "no guards p50", "full p50", "added p50", "added p95", "failed (full)",
                "busy after (s)"]


def _added_cells(row: dict[str, Any]) -> list[str]:
    """The cells of ``ADDED_HEADER``: a row of guard_cost.added, with its failures and whether it gave up."""
    failed = _failures(row["failures"]["full"]) + (" (gave up)" if row.get("gave_up") else "")
    return [row["requests"], _f(row["none_p50"]), _f(row["full_p50"]), _f(row["added_p50"]), _f(row["added_p95"]),
            failed, _f(row.get("busy_after_s"), 0)]


def _failures(failures: dict[str, int]) -> str:
    text = ", ".join(f"{count}× {status}" for status, count in failures.items())
    return f"**{text}**" if text else ""


def _scaling(section: dict[str, Any]) -> list[str]:
    lengths = [[f"{r['chars']:,}", *_added_cells(r)] for r in section["lengths"]]
    guards = [[g["guards"], g["added"], g["requests"], _f(g["p50"]), _f(g["added_p50"]), _f(g["increment"]),
               _failures(g["failures"]) + (" (gave up)" if g["gave_up"] else "")] for g in section["guards"]]
    skipped = ", ".join(f"{c:,}" for c in section.get("skipped_lengths", []))
    return ["### Scaling", "",
            f"Full policy against prompt length: **{_f(section['ms_per_1000_chars'])} ms per 1,000 characters**, "
            f"intercept {_f(section['length_intercept_ms'])} ms (least squares over the added p50s of the "
            f"{section['length_fit_points']} lengths where the guards answered, not their time-out)."
            + (f" Not measured, as a shorter prompt already timed out: {skipped} characters." if skipped else ""), "",
            *_table(["prompt chars", *ADDED_HEADER], lengths),
            f"Input guards, {section['guard_prompt_chars']:,}-character prompts: "
            f"**{_f(section['ms_per_guard'])} ms per guard**, intercept {_f(section['guard_intercept_ms'])} ms "
            f"(least squares over the {section['guard_fit_points']} chains that did not time out).", "",
            *_table(["guards", "last added", "requests", "p50", "added p50", "increment", "failed"], guards)]


def _memory(results: dict[str, Any]) -> list[str]:
    rows = [[r["policy"], r["workers"], r["pid"], _f(r["idle_mib"], 0), _f(r["after_mib"], 0),
             ", ".join(r["loaded_by"])] for r in (results.get("memory") or {}).get("rows", [])]
    rows += [[r["policy"], r["workers"], r["pid"], _f(r["idle_mib"], 0), _f(r["after_mib"], 0), "workers"]
             for r in (results.get("workers") or {}).get("memory", [])]
    return ["### Memory (VmRSS per worker process, MiB)", "",
            *_table(["policy", "workers", "pid", "idle (ready)", "after load", "loaded by"], rows)]


def _workers(section: dict[str, Any]) -> list[str]:
    rows = [[r["policy"], r["prompt"], r["workers"], r["concurrency"], _f(r["rps"], 0), _f(r["p50"]), _f(r["p99"]),
             _f(r["x_one_worker"]), r["error_count"] or "", "yes" if r["reused"] else ""] for r in section["rows"]]
    return ["### Workers (not pinned; wrk, upstream and proxy share both cores)", "",
            *_table(["policy", "prompt", "workers", "c", "req/s", "p50", "p99", "× one worker", "errors",
                     "bodies reused"], rows)]


def _commands(results: dict[str, Any]) -> list[str]:
    """The suite's command, then per section the servers it started and one wrk command of each kind
    (their Lua scripts are written by benchmarks/loadgen.py into a temporary directory)."""
    lines = ["### Commands", "", "```", f"make bench   # runs: {results['meta']['command']}"]
    for name in ("passthrough", "ttft", "guards", "scaling", "memory", "workers"):
        section = results.get(name) or {}
        kinds: dict[object, str] = {}
        for row in section.get("rows", []):
            if "command" in row:
                kinds.setdefault((row.get("stream"), row.get("prompt")), row["command"])
        if section.get("commands") or kinds:
            lines += [f"# {name}", *section.get("commands", []), *kinds.values()]
    return [*lines, "```"]


def render(results: dict[str, Any]) -> str:
    lines = [*_machine(results), *_targets(results)]
    for name, section in (("passthrough", _passthrough), ("ttft", _ttft), ("guards", _guards),
                          ("scaling", _scaling)):
        if results.get(name):
            lines += section(results[name])
    if results.get("memory") or results.get("workers"):
        lines += _memory(results)
    if results.get("workers"):
        lines += _workers(results["workers"])
    lines += _commands(results)
    return "\n".join(lines).rstrip() + "\n"


def write_readme(readme: Path, results: dict[str, Any]) -> None:
    """Replace what is between the markers (appending them if the file has none)."""
    text = readme.read_text() if readme.exists() else ""
    block = f"{START}\n{render(results)}{END}"
    if START in text and END in text:
        before, rest = text.split(START, 1)
        text = before + block + rest.split(END, 1)[1]
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    readme.write_text(text)
