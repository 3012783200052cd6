"""The engine: actions, verdicts, monitor mode, on_error and timeouts."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import ClassVar

import pytest

from guardproxy.engine import Engine
from guardproxy.guards import REGISTRY, Finding, GuardConfig, GuardContext, Segment
from guardproxy.policy.loader import parse_policy
from guardproxy.policy.schema import Policy


class SlowConfig(GuardConfig):
    seconds: float = 1.0


class SlowGuard:
    Config: ClassVar[type[GuardConfig]] = SlowConfig
    cpu_bound: ClassVar[bool] = True

    def __init__(self, config: SlowConfig) -> None:
        self.seconds = config.seconds

    def warm(self) -> None:
        return None

    def scan(self, segments: Sequence[Segment], context: GuardContext) -> list[Finding]:
        time.sleep(self.seconds)
        return [Finding("slow", 0.5, 0)]


class BrokenGuard(SlowGuard):
    def scan(self, segments: Sequence[Segment], context: GuardContext) -> list[Finding]:
        raise RuntimeError("model exploded on: " + segments[0].text)


class OutOfRangeGuard(SlowGuard):
    cpu_bound: ClassVar[bool] = False

    def scan(self, segments: Sequence[Segment], context: GuardContext) -> list[Finding]:
        return [Finding("bad", 1.0, 7), Finding("bad", 1.0, 0, 5, 500), Finding("ok", 1.0, 0, 0, 1)]


@pytest.fixture(autouse=True)
def test_guards(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(REGISTRY, "slow", SlowGuard)  # type: ignore[arg-type]
    monkeypatch.setitem(REGISTRY, "broken", BrokenGuard)  # type: ignore[arg-type]
    monkeypatch.setitem(REGISTRY, "outofrange", OutOfRangeGuard)  # type: ignore[arg-type]


def policy(chain: str, defaults: str = "{}") -> Policy:
    return parse_policy(f"version: 1\nname: t\ndefaults: {defaults}\nchains:\n  default:\n    input:\n{chain}", "t")


async def run(p: Policy, *texts: str) -> tuple[Engine, object]:
    engine = Engine(2)
    result = await engine.run(p, p.chains["default"].input, [Segment(t, ("messages", i, "content"))
                                                              for i, t in enumerate(texts)],
                              GuardContext("input"))
    engine.close()
    return engine, result


async def test_redact_merges_guards_and_keeps_offsets_on_original() -> None:
    p = policy("      - {guard: keywords, action: redact, terms: [alpha beta], label: A}\n"
               "      - {guard: keywords, action: redact, terms: [beta gamma], label: B}\n"
               "      - {guard: keywords, action: flag, terms: [delta]}\n")
    _, result = await run(p, "x alpha beta gamma y delta", "clean")
    assert result.verdict == "redacted"  # type: ignore[attr-defined]
    assert result.texts == ["x [A] y delta", "clean"]  # type: ignore[attr-defined]
    spans = sorted((d.label, d.start, d.end) for d in result.decisions)  # type: ignore[attr-defined]
    assert spans == [("A", 2, 12), ("B", 8, 18), ("delta", 21, 26)]
    assert [d.name for d in result.decisions] == ["keywords#1", "keywords#2", "keywords#3"]  # type: ignore[attr-defined]


async def test_block_wins_over_redact() -> None:
    p = policy("      - {guard: keywords, action: redact, terms: [alpha]}\n"
               "      - {guard: keywords, action: block, terms: [omega], message: no omegas}\n")
    _, result = await run(p, "alpha and omega")
    assert result.verdict == "blocked" and result.message == "no omegas"  # type: ignore[attr-defined]


async def test_monitor_mode_changes_nothing_but_records() -> None:
    p = policy("      - {guard: keywords, action: block, terms: [omega], mode: monitor}\n"
               "      - {guard: keywords, action: redact, terms: [alpha]}\n", defaults="{mode: monitor}")
    _, result = await run(p, "alpha and omega")
    assert result.verdict == "flagged"  # type: ignore[attr-defined]
    assert result.texts == ["alpha and omega"]  # type: ignore[attr-defined]
    assert {(d.action, d.mode) for d in result.decisions} == {("block", "monitor"), ("redact", "monitor")}  # type: ignore[attr-defined]


async def test_timeout_fails_closed_by_default_and_open_when_allowed() -> None:
    closed = policy("      - {guard: slow, action: flag, seconds: 2, timeout_ms: 100}\n")
    started = time.perf_counter()
    _, result = await run(closed, "text")
    assert time.perf_counter() - started < 1.5  # the request does not wait for the stuck guard
    assert result.verdict == "blocked"  # type: ignore[attr-defined]
    assert [(f.kind, f.blocked) for f in result.failures] == [("timeout", True)]  # type: ignore[attr-defined]
    assert result.decisions[0].label == "guard_timeout"  # type: ignore[attr-defined]

    open_ = policy("      - {guard: slow, action: flag, seconds: 2, timeout_ms: 100, on_error: allow}\n")
    _, result = await run(open_, "text")
    assert result.verdict == "pass" and result.failures[0].blocked is False  # type: ignore[attr-defined]


async def test_guard_exception_follows_on_error_and_never_logs_text(caplog: pytest.LogCaptureFixture) -> None:
    p = policy("      - {guard: broken, action: flag}\n")
    _, result = await run(p, "jane.doe@example.com")
    assert result.verdict == "blocked"  # type: ignore[attr-defined]
    assert result.failures[0].kind == "error"  # type: ignore[attr-defined]
    assert "jane.doe" not in caplog.text and "jane.doe" not in result.failures[0].detail  # type: ignore[attr-defined]
    p_monitor = policy("      - {guard: broken, action: block, mode: monitor}\n")
    _, result = await run(p_monitor, "x")
    assert result.verdict == "pass"  # type: ignore[attr-defined]  # monitor never blocks, even on error


async def test_findings_out_of_range_are_dropped() -> None:
    p = policy("      - {guard: outofrange, action: redact}\n")
    _, result = await run(p, "abc")
    assert [d.label for d in result.decisions] == ["ok"]  # type: ignore[attr-defined]
    assert result.texts == ["[ok]bc"]  # type: ignore[attr-defined]


async def test_cpu_bound_guards_run_concurrently() -> None:
    p = policy("      - {name: a, guard: slow, action: flag, seconds: 0.4}\n"
               "      - {name: b, guard: slow, action: flag, seconds: 0.4}\n")
    started = time.perf_counter()
    _, result = await run(p, "x")
    assert len(result.decisions) == 2  # type: ignore[attr-defined]
    assert time.perf_counter() - started < 0.75


async def test_empty_chain_or_no_text_passes() -> None:
    p = policy("      - {guard: keywords, action: block, terms: [x]}\n")
    _, result = await run(p)
    assert result.verdict == "pass"  # type: ignore[attr-defined]
