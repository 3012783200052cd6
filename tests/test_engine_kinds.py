"""Where the engine runs each guard: ``inline`` and ``io`` on the event loop, ``cpu`` in the pool."""

from __future__ import annotations

import asyncio
import threading
import warnings
from collections.abc import Sequence
from typing import Any, ClassVar

import pytest

from guardproxy.engine.core import ChainResult, Engine
from guardproxy.guards.api import REGISTRY, Finding, GuardConfig, GuardContext, GuardKind, Segment, UpstreamCallError
from guardproxy.policy.loader import parse_policy
from guardproxy.policy.schema import Policy

THREADS: dict[str, int] = {}  # guard name -> the thread its scan ran in


class KindConfig(GuardConfig):
    kind: str = "cpu"
    label: str = ""
    wait_for: str | None = None  # io: the label of another io guard that must have started first
    sleep: float = 0.0
    fail: bool = False


class KindGuard:
    """Notes its thread, flags every segment; as an io guard it can wait for another one, sleep or fail."""

    Config: ClassVar[type[GuardConfig]] = KindConfig
    started: ClassVar[dict[str, asyncio.Event]] = {}

    def __init__(self, config: KindConfig) -> None:
        self.config = config

    @property
    def kind(self) -> GuardKind:
        return self.config.kind  # type: ignore[return-value]  # "gpu" in one test, on purpose

    def warm(self) -> None:
        return None

    def scan(self, segments: Sequence[Segment], context: GuardContext) -> Any:
        THREADS[self.config.label] = threading.get_ident()
        if self.config.kind == "io":
            return self._scan_io(segments, context)
        return [Finding(self.config.label, 1.0, i) for i in range(len(segments))]

    async def _scan_io(self, segments: Sequence[Segment], context: GuardContext) -> list[Finding]:
        self.started.setdefault(self.config.label, asyncio.Event()).set()
        if self.config.wait_for:
            await self.started.setdefault(self.config.wait_for, asyncio.Event()).wait()
        await asyncio.sleep(self.config.sleep)
        if self.config.fail:
            raise UpstreamCallError("/moderations: upstream answered 503")
        return [Finding(self.config.label, 1.0, i) for i in range(len(segments))]


class AwaitingInlineGuard(KindGuard):
    """Declares inline but awaits: a contract error, reported as a guard error."""

    def scan(self, segments: Sequence[Segment], context: GuardContext) -> Any:
        return self._scan_io(segments, context)


@pytest.fixture(autouse=True)
def kind_guards(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(REGISTRY, "kind", KindGuard)  # type: ignore[arg-type]
    monkeypatch.setitem(REGISTRY, "awaiting", AwaitingInlineGuard)  # type: ignore[arg-type]
    THREADS.clear()
    KindGuard.started.clear()


def policy(entries: str) -> Policy:
    return parse_policy(f"version: 1\nname: t\nchains:\n  default:\n    input:\n{entries}", "t")


async def run(p: Policy, *texts: str) -> ChainResult:
    engine = Engine(2)
    try:
        return await engine.run(p, p.chains["default"].input, [Segment(t) for t in texts], GuardContext("input"))
    finally:
        engine.close()


async def test_each_kind_runs_where_it_says() -> None:
    p = policy("      - {guard: kind, action: flag, kind: inline, name: inline, label: inline}\n"
               "      - {guard: kind, action: flag, kind: cpu, name: cpu, label: cpu}\n"
               "      - {guard: kind, action: flag, kind: io, name: io, label: io}\n")
    result = await run(p, "text")
    loop_thread = threading.get_ident()
    assert THREADS["inline"] == loop_thread and THREADS["io"] == loop_thread
    assert THREADS["cpu"] != loop_thread
    assert sorted(d.label for d in result.decisions) == ["cpu", "inline", "io"]
    assert [r.outcome for r in result.runs] == ["ok", "ok", "ok"]


async def test_io_guards_wait_side_by_side() -> None:
    """Each waits until the other has started: awaited one after the other, the first would time out."""
    p = policy("      - {guard: kind, action: flag, kind: io, name: a, label: a, wait_for: b, timeout_ms: 20000}\n"
               "      - {guard: kind, action: flag, kind: io, name: b, label: b, wait_for: a, timeout_ms: 20000}\n"
               "      - {guard: kind, action: flag, kind: cpu, name: c, label: c}\n")
    result = await run(p, "text")
    assert result.failures == []
    assert sorted(d.label for d in result.decisions) == ["a", "b", "c"]


async def test_an_io_guard_past_its_timeout_is_a_guard_timeout() -> None:
    p = policy("      - {guard: kind, action: flag, kind: io, name: slow, label: slow, sleep: 30, timeout_ms: 50}\n"
               "      - {guard: kind, action: flag, kind: io, name: slow_allowed, label: slow_allowed, sleep: 30,\n"
               "         timeout_ms: 50, on_error: allow}\n")
    result = await run(p, "text")
    assert [(f.name, f.kind, f.blocked) for f in result.failures] == [("slow", "timeout", True),
                                                                      ("slow_allowed", "timeout", False)]
    assert result.failures[0].detail == "no answer within 50 ms"
    assert [d.label for d in result.decisions] == ["guard_timeout"]
    assert result.verdict == "blocked"


async def test_an_io_guard_error_follows_on_error() -> None:
    p = policy("      - {guard: kind, action: flag, kind: io, name: down, label: down, fail: true, on_error: allow}\n")
    result = await run(p, "text")
    assert [(f.kind, f.blocked) for f in result.failures] == [("error", False)]
    assert "UpstreamCallError" in result.failures[0].detail
    assert result.verdict == "flagged"  # failed open: the text went unchecked


async def test_awaiting_without_declaring_io_is_a_guard_error() -> None:
    p = policy("      - {guard: awaiting, action: flag, kind: inline, name: inline, label: inline}\n"
               "      - {guard: awaiting, action: flag, kind: cpu, name: cpu, label: cpu}\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the coroutine it returned is closed, not left un-awaited
        result = await run(p, "text")
    assert [(f.name, f.kind) for f in result.failures] == [("inline", "error"), ("cpu", "error")]
    assert all(f.detail.startswith("TypeError at pool.py") for f in result.failures)


async def test_an_unknown_kind_is_a_guard_that_cannot_be_built() -> None:
    result = await run(policy("      - {guard: kind, action: flag, kind: gpu, name: g, label: g}\n"), "text")
    assert [(f.kind, f.blocked) for f in result.failures] == [("error", True)]
    assert result.failures[0].detail.startswith("TypeError at ")  # guard_kind: the message is never shown


async def test_a_guard_that_declares_no_kind_runs_in_the_pool(monkeypatch: pytest.MonkeyPatch) -> None:
    class Undeclared:
        Config: ClassVar[type[GuardConfig]] = GuardConfig

        def __init__(self, config: GuardConfig) -> None:
            del config

        def warm(self) -> None:
            return None

        def scan(self, segments: Sequence[Segment], context: GuardContext) -> list[Finding]:
            THREADS["undeclared"] = threading.get_ident()
            return []

    monkeypatch.setitem(REGISTRY, "undeclared", Undeclared)  # type: ignore[arg-type]
    result = await run(policy("      - {guard: undeclared, action: flag}\n"), "text")
    assert result.failures == [] and THREADS["undeclared"] != threading.get_ident()
