"""The engine: actions, verdicts, monitor mode, on_error, timeouts and the findings cache."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import ClassVar

import pytest

from guardproxy.engine import Engine
from guardproxy.guards import REGISTRY, Finding, GuardConfig, GuardContext, Segment
from guardproxy.guards.api import GuardKind
from guardproxy.policy.loader import parse_policy
from guardproxy.policy.schema import Policy


class SlowConfig(GuardConfig):
    seconds: float = 1.0


class SlowGuard:
    Config: ClassVar[type[GuardConfig]] = SlowConfig
    kind: ClassVar[GuardKind] = "cpu"

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
    kind: ClassVar[GuardKind] = "inline"

    def scan(self, segments: Sequence[Segment], context: GuardContext) -> list[Finding]:
        return [Finding("bad", 1.0, 7), Finding("bad", 1.0, 0, 5, 500), Finding("ok", 1.0, 0, 0, 1)]


class UnbuildableGuard(SlowGuard):
    def __init__(self, config: SlowConfig) -> None:
        raise ValueError("the model file is missing")


class WordConfig(GuardConfig):
    word: str = "bad"


class WordGuard:
    """Flags each segment containing ``word``, and notes every text it was asked to scan."""

    Config: ClassVar[type[GuardConfig]] = WordConfig
    kind: ClassVar[GuardKind] = "cpu"
    cacheable: ClassVar[bool] = True
    scanned: ClassVar[list[tuple[str, str]]] = []  # (guard class, text)

    def __init__(self, config: WordConfig) -> None:
        self.word = config.word

    def warm(self) -> None:
        return None

    def scan(self, segments: Sequence[Segment], context: GuardContext) -> list[Finding]:
        self.scanned.extend((type(self).__name__, s.text) for s in segments)
        return [Finding("word", 1.0, i, s.text.index(self.word), s.text.index(self.word) + len(self.word))
                for i, s in enumerate(segments) if self.word in s.text]


class UncachedWordGuard(WordGuard):
    cacheable: ClassVar[bool] = False


@pytest.fixture(autouse=True)
def test_guards(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(REGISTRY, "slow", SlowGuard)  # type: ignore[arg-type]
    monkeypatch.setitem(REGISTRY, "broken", BrokenGuard)  # type: ignore[arg-type]
    monkeypatch.setitem(REGISTRY, "outofrange", OutOfRangeGuard)  # type: ignore[arg-type]
    monkeypatch.setitem(REGISTRY, "unbuildable", UnbuildableGuard)  # type: ignore[arg-type]
    monkeypatch.setitem(REGISTRY, "word", WordGuard)  # type: ignore[arg-type]
    monkeypatch.setitem(REGISTRY, "uncached_word", UncachedWordGuard)  # type: ignore[arg-type]
    WordGuard.scanned.clear()


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
    assert result.verdict == "flagged" and result.failures[0].blocked is False  # type: ignore[attr-defined]


async def test_guard_exception_follows_on_error_and_never_logs_text(caplog: pytest.LogCaptureFixture) -> None:
    p = policy("      - {guard: broken, action: flag}\n")
    _, result = await run(p, "jane.doe@example.com")
    assert result.verdict == "blocked"  # type: ignore[attr-defined]
    assert result.failures[0].kind == "error"  # type: ignore[attr-defined]
    assert "jane.doe" not in caplog.text and "jane.doe" not in result.failures[0].detail  # type: ignore[attr-defined]
    p_monitor = policy("      - {guard: broken, action: block, mode: monitor}\n")
    _, result = await run(p_monitor, "x")
    assert result.verdict == "flagged"  # type: ignore[attr-defined]  # monitor never blocks, even on error


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


async def test_a_timeout_does_not_hold_up_the_other_guards() -> None:
    p = policy("      - {name: stuck, guard: slow, action: flag, seconds: 2, timeout_ms: 150, on_error: allow}\n"
               "      - {name: quick, guard: slow, action: flag, seconds: 0.05, timeout_ms: 5000}\n")
    started = time.perf_counter()
    _, result = await run(p, "text")
    assert time.perf_counter() - started < 1.0
    assert [(f.name, f.kind) for f in result.failures] == [("stuck", "timeout")]  # type: ignore[attr-defined]
    assert [d.name for d in result.decisions] == ["quick"]  # type: ignore[attr-defined]
    assert [(r.name, r.outcome) for r in result.runs] == [("stuck", "timeout"), ("quick", "ok")]  # type: ignore[attr-defined]


async def test_a_guard_that_cannot_be_built_follows_on_error() -> None:
    p = policy("      - {guard: unbuildable, action: flag}\n      - {guard: keywords, action: flag, terms: [x]}\n")
    _, result = await run(p, "x")
    assert result.verdict == "blocked"  # type: ignore[attr-defined]
    assert [(f.guard, f.kind) for f in result.failures] == [("unbuildable", "error")]  # type: ignore[attr-defined]


async def test_a_cancelled_run_never_starts_its_queued_scans() -> None:
    p = policy("      - {name: a, guard: slow, action: flag, seconds: 0.3}\n"
               "      - {name: b, guard: word, action: flag}\n")
    engine = Engine(1)  # one thread: b waits behind a
    task = asyncio.create_task(engine.run(p, p.chains["default"].input, [Segment("bad")], GuardContext("input")))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(0.4)
    engine.close()
    assert WordGuard.scanned == []


def scanned_by(guard: type[WordGuard]) -> list[str]:
    return [text for name, text in WordGuard.scanned if name == guard.__name__]


def chat(*texts: str) -> list[Segment]:
    return [Segment(t, ("messages", i, "content"), "user" if i % 2 == 0 else "assistant") for i, t in enumerate(texts)]


async def test_a_cacheable_guard_scans_each_segment_once() -> None:
    p = policy("      - {guard: word, action: redact}\n      - {guard: uncached_word, action: flag, word: fine}\n")
    entries, engine = p.chains["default"].input, Engine(2)
    first = await engine.run(p, entries, chat("a bad start", "fine"), GuardContext("input"))
    second = await engine.run(p, entries, chat("a bad start", "fine", "bad again"), GuardContext("input"))
    engine.close()
    assert scanned_by(WordGuard) == ["a bad start", "fine", "bad again"]  # turn 2: only the new segment
    assert scanned_by(UncachedWordGuard) == ["a bad start", "fine"] * 2 + ["bad again"]
    assert second.texts == ["a [word] start", "fine", "[word] again"]
    assert [(d.name, d.segment, d.start, d.end) for d in second.decisions] == [
        ("word", 0, 2, 5), ("word", 2, 0, 3), ("uncached_word", 1, 0, 4)]
    assert [r.findings for r in second.runs] == [r.findings + n for r, n in zip(first.runs, (1, 0), strict=True)]


async def test_the_cache_knows_roles_and_can_be_bypassed() -> None:
    p = policy("      - {guard: word, action: flag}\n")
    entries, engine = p.chains["default"].input, Engine(1)
    await engine.run(p, entries, [Segment("bad", (), "user")], GuardContext("input"))
    await engine.run(p, entries, [Segment("bad", (), "assistant")], GuardContext("input"))  # another role
    await engine.run(p, entries, [Segment("not bad", (), "user")], GuardContext("output"), remember=False)
    await engine.run(p, entries, [Segment("not bad", (), "user")], GuardContext("input"))  # was not remembered
    result = await engine.run(p, entries, [Segment("bad", (), "user")], GuardContext("output"))
    engine.close()
    assert scanned_by(WordGuard) == ["bad", "bad", "not bad", "not bad"]
    assert [(d.label, d.segment) for d in result.decisions] == [("word", 0)]
