"""Guard instances across reloads: shared by settings, dropped when no policy uses them any more."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator, Sequence
from typing import ClassVar

import pytest

from guardproxy.engine.core import Engine
from guardproxy.guards.api import REGISTRY, Finding, GuardConfig, GuardContext, GuardKind, Segment
from guardproxy.policy.loader import parse_policy
from guardproxy.policy.schema import GuardEntry, Policy


class CountingConfig(GuardConfig):
    word: str = "bad"


class CountingGuard:
    """Flags ``word``; counts how many instances were ever built and warmed."""

    Config: ClassVar[type[GuardConfig]] = CountingConfig
    kind: ClassVar[GuardKind] = "inline"
    cacheable: ClassVar[bool] = True
    built: ClassVar[int] = 0
    warmed: ClassVar[int] = 0

    def __init__(self, config: CountingConfig) -> None:
        self.word = config.word
        CountingGuard.built += 1

    def warm(self) -> None:
        CountingGuard.warmed += 1

    def scan(self, segments: Sequence[Segment], context: GuardContext) -> list[Finding]:
        return [Finding(self.word, 1.0, i) for i, s in enumerate(segments) if self.word in s.text]


@pytest.fixture(autouse=True)
def counting_guard(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(REGISTRY, "counting", CountingGuard)
    CountingGuard.built = CountingGuard.warmed = 0


@pytest.fixture
def engine() -> Iterator[Engine]:
    engine = Engine(1)
    yield engine
    engine.close()


def policy(word: str, extra: str = "") -> Policy:
    return parse_policy("version: 1\nname: p\nchains:\n  default:\n    input:\n"
                        f"      - {{guard: counting, action: flag, word: {word}}}\n"
                        "      - {guard: keywords, action: flag, terms: [stable]}\n" + extra, "p")


def entry(p: Policy, index: int = 0) -> GuardEntry:
    return p.chains["default"].input[index]


@pytest.fixture
def no_cycle_collection() -> Iterator[None]:
    """Only reference counting frees anything, as for objects ``gc.freeze`` moved out of sight."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


@pytest.mark.usefixtures("no_cycle_collection")
def test_a_reload_that_changes_settings_frees_the_old_instance(engine: Engine) -> None:
    old = policy("alpha")
    engine.prepare([old])
    old_guard = weakref.ref(engine.guard_for(entry(old)))
    kept_guard = engine.guard_for(entry(old, 1))
    new = policy("beta")
    engine.prepare([new])
    assert engine.retain([new]) == 1
    assert old_guard() is not None, "a request still holding the old policy keeps its guards"
    del old
    assert old_guard() is None
    assert engine.guard_for(entry(new, 1)) is kept_guard  # same settings: same instance, model kept
    assert engine.instance_count == 2


def test_repeated_reloads_do_not_grow_the_instances(engine: Engine) -> None:
    current = policy("w0")
    engine.prepare([current])
    counts = []
    for n in range(1, 8):
        current = policy(f"w{n}")
        engine.prepare([current])
        engine.retain([current])
        counts.append(engine.instance_count)
    assert counts == [2] * 7
    assert CountingGuard.built == 8


async def test_a_request_under_the_old_policy_keeps_its_warm_instance(engine: Engine) -> None:
    old = policy("alpha")
    engine.prepare([old])
    new = policy("beta")
    engine.prepare([new])
    engine.retain([new])
    built = CountingGuard.built
    result = await engine.run(old, old.chains["default"].input, [Segment("alpha stable")], GuardContext("output"))
    assert sorted(d.label for d in result.decisions) == ["alpha", "stable"]
    assert CountingGuard.built == built, "the old policy's instance was used, not rebuilt"
    assert engine.instance_count == 2, "and it did not come back into the current instances"


async def test_an_unprepared_policy_builds_on_first_use(engine: Engine) -> None:
    p = policy("alpha")
    result = await engine.run(p, p.chains["default"].input, [Segment("alpha")], GuardContext("input"))
    assert [d.label for d in result.decisions] == ["alpha"]
    assert (CountingGuard.built, CountingGuard.warmed, engine.instance_count) == (1, 0, 2)


@pytest.mark.usefixtures("no_cycle_collection")
async def test_the_dropped_instance_takes_its_findings_cache_along(engine: Engine) -> None:
    old = policy("alpha")
    engine.prepare([old])
    await engine.run(old, old.chains["default"].input, [Segment("alpha")], GuardContext("input"))
    instance = engine._instances.get(entry(old), old)
    assert instance.cache is not None and len(instance.cache) == 1
    cache = weakref.ref(instance.cache)
    del instance
    new = policy("beta")
    engine.prepare([new])
    engine.retain([new])
    del old
    assert cache() is None
