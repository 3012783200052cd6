"""The guard registry: built-ins declared as entry points, and third-party guard types usable from a policy."""

from __future__ import annotations

import re
from collections.abc import Sequence
from importlib.metadata import EntryPoint, entry_points
from typing import ClassVar

import pytest
from pydantic import field_validator

from guardproxy.engine.core import Engine
from guardproxy.guards import registry
from guardproxy.guards.api import (
    REGISTRY,
    Finding,
    GuardConfig,
    GuardContext,
    GuardKind,
    GuardType,
    Segment,
    validate_regex,
)
from guardproxy.policy import PolicyError
from guardproxy.policy.loader import parse_policy


class ShoutingConfig(GuardConfig):
    """A third-party guard's own keys."""

    min_letters: int = 3
    ignore: str | None = None

    @field_validator("ignore")
    @classmethod
    def _compiles(cls, ignore: str | None) -> str | None:
        return None if ignore is None else validate_regex(ignore)


class ShoutingGuard:
    """Flags words written in capitals."""

    Config: ClassVar[type[GuardConfig]] = ShoutingConfig
    kind: ClassVar[GuardKind] = "inline"

    def __init__(self, config: ShoutingConfig) -> None:
        self.pattern = re.compile(rf"\b[A-Z]{{{config.min_letters},}}\b")
        self.ignore = re.compile(config.ignore) if config.ignore else None

    def warm(self) -> None:
        return None

    def scan(self, segments: Sequence[Segment], context: GuardContext) -> list[Finding]:
        return [Finding("shouting", 1.0, i, m.start(), m.end()) for i, s in enumerate(segments)
                for m in self.pattern.finditer(s.text) if not (self.ignore and self.ignore.fullmatch(m.group()))]


GUARD_TYPE = GuardType(ShoutingConfig, f"{__name__}:ShoutingGuard")

POLICY = """
version: 1
name: p
chains:
  default:
    input:
      - {guard: shouting, action: redact, min_letters: 4, ignore: NASA}
"""


def test_the_built_in_guards_are_declared_as_entry_points() -> None:
    """``pip install`` of this package registers them; ``BUILTIN`` only covers a checkout never installed."""
    declared = {point.name: point.value for point in entry_points(group=registry.ENTRY_POINT_GROUP)}
    assert {name: declared.get(name) for name in registry.BUILTIN} == registry.BUILTIN
    for name in registry.BUILTIN:
        assert isinstance(registry.GuardRegistry().guard_type(name), GuardType)


@pytest.mark.parametrize("registration", ["guard_type", "guard_class"])
async def test_a_registered_guard_type_is_usable_from_a_policy(
        monkeypatch: pytest.MonkeyPatch, registration: str) -> None:
    monkeypatch.setitem(REGISTRY, "shouting", ShoutingGuard)  # type: ignore[arg-type]  # undone after the test
    if registration == "guard_type":
        REGISTRY.register("shouting", GUARD_TYPE)
    policy = parse_policy(POLICY, "p.yaml")
    entry = policy.chains["default"].input[0]
    assert entry.settings == ShoutingConfig(min_letters=4, ignore="NASA")
    engine = Engine(1)
    try:
        result = await engine.run(policy, [entry], [Segment("WHY does NASA say STOP")], GuardContext("input"))
    finally:
        engine.close()
    assert result.texts == ["WHY does NASA say [shouting]"]


def test_a_third_party_guard_s_keys_are_validated_with_line_and_key_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(REGISTRY, "shouting", ShoutingGuard)  # type: ignore[arg-type]
    with pytest.raises(PolicyError) as caught:
        parse_policy(POLICY.replace("ignore: NASA", "volume: 11"), "p.yaml")
    assert caught.value.problems == ["p.yaml:7: chains.default.input.0: volume: unknown key for guard 'shouting'"]
    with pytest.raises(PolicyError, match=r"p\.yaml:7: .*ignore: '\(' is not a valid regular expression"):
        parse_policy(POLICY.replace("ignore: NASA", "ignore: '('"), "p.yaml")


def test_a_guard_found_through_an_entry_point(monkeypatch: pytest.MonkeyPatch) -> None:
    """What ``[project.entry-points."guardproxy.guards"]`` in another package's pyproject.toml does."""
    point = EntryPoint("shouting", f"{__name__}:GUARD_TYPE", registry.ENTRY_POINT_GROUP)
    monkeypatch.setattr(registry, "entry_points", lambda group: [point] if group == point.group else [])
    found = registry.GuardRegistry()
    assert "shouting" in found and "keywords" in found
    assert found.config_for("shouting") is ShoutingConfig
    assert found["shouting"] is ShoutingGuard
    policy = parse_policy(POLICY, "p.yaml", guard_types=found)
    assert policy.chains["default"].input[0].settings == ShoutingConfig(min_letters=4, ignore="NASA")
    with pytest.raises(PolicyError,
                       match="unknown guard 'shouting'; known guards: grounding, injection, keywords, pii"):
        parse_policy(POLICY, "p.yaml")  # the process's registry has no such entry point


def test_a_broken_guard_package_is_a_policy_error(monkeypatch: pytest.MonkeyPatch) -> None:
    point = EntryPoint("broken", "no_such_package_here:GUARD_TYPE", registry.ENTRY_POINT_GROUP)
    monkeypatch.setattr(registry, "entry_points", lambda group: [point])
    with pytest.raises(PolicyError) as caught:
        parse_policy(POLICY.replace("shouting", "broken"), "p.yaml", guard_types=registry.GuardRegistry())
    assert caught.value.problems == [
        "p.yaml:7: chains.default.input.0: guard 'broken' cannot be loaded: ModuleNotFoundError: "
        "No module named 'no_such_package_here'"]
