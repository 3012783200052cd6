"""Which guard types exist, found without importing any of them.

Built-in guards and third-party ones are registered alike, through the
``guardproxy.guards`` entry-point group: a pip-installable package declares

    [project.entry-points."guardproxy.guards"]
    my_guard = "my_package:GUARD_TYPE"

where ``GUARD_TYPE`` is a ``GuardType`` (its settings class, and where the guard
class lives), or the guard class itself. Nothing is imported until a policy
names the guard, so checking a keywords-only policy never loads Presidio or spaCy.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any

from guardproxy.guards.base import Guard, GuardConfig

ENTRY_POINT_GROUP = "guardproxy.guards"

# The built-in guards, also declared as entry points in pyproject.toml; listed here too so that
# a source checkout that was never installed still finds them.
BUILTIN: dict[str, str] = {
    "keywords": "guardproxy.guards.keywords:GUARD_TYPE",
    "pii": "guardproxy.guards.pii:GUARD_TYPE",
    "toxicity": "guardproxy.guards.toxicity:GUARD_TYPE",
    "topics": "guardproxy.guards.topics:GUARD_TYPE",
    "grounding": "guardproxy.guards.grounding:GUARD_TYPE",
    "secrets": "guardproxy.guards.secrets:GUARD_TYPE",
    "injection": "guardproxy.guards.injection:GUARD_TYPE",
}


@dataclass(frozen=True)
class GuardType:
    """A guard's settings class, and the ``module:Class`` of the guard itself,
    imported only when a guard of this type is built."""

    config: type[GuardConfig]
    implementation: str

    def guard_class(self) -> type[Guard]:
        cls: type[Guard] = _load(self.implementation)
        return cls


def _load(reference: str) -> Any:
    module, _, attribute = reference.partition(":")
    value: Any = importlib.import_module(module)
    for part in attribute.split("."):
        value = getattr(value, part)
    return value


def _as_type(value: Any) -> GuardType:
    if isinstance(value, GuardType):
        return value
    config = getattr(value, "Config", None)
    if isinstance(value, type) and isinstance(config, type) and issubclass(config, GuardConfig):
        return GuardType(config, f"{value.__module__}:{value.__qualname__}")
    raise TypeError(f"{value!r} is neither a GuardType nor a guard class with a Config")


class GuardRegistry(MutableMapping[str, type[Guard]]):
    """Guard names to guard classes, resolved on first use. Item access imports the
    guard; ``config_for`` imports only its settings.

    ``registry[name] = GuardClass`` or ``registry.register(name, GuardType(...))`` adds a
    guard type in process (tests, applications that embed the engine); a pip-installed
    package uses the entry-point group instead."""

    def __init__(self) -> None:
        self._references: dict[str, str] = dict(BUILTIN)
        for point in entry_points(group=ENTRY_POINT_GROUP):
            self._references.setdefault(point.name, point.value)
        self._types: dict[str, GuardType] = {}
        self._classes: dict[str, type[Guard]] = {}

    def guard_type(self, name: str) -> GuardType:
        if name not in self._types:
            reference = self._references.get(name)
            if reference is None:
                raise KeyError(name)
            self._types[name] = _as_type(_load(reference))
        return self._types[name]

    def config_for(self, name: str) -> type[GuardConfig]:
        return self.guard_type(name).config

    def register(self, name: str, guard: GuardType | type[Guard]) -> None:
        """Add (or replace) the guard type ``name``: a ``GuardType``, imported when first
        built, or a guard class with a ``Config``."""
        self._types[name] = _as_type(guard)
        self._classes.pop(name, None)
        if not isinstance(guard, GuardType):
            self._classes[name] = guard
        self._references[name] = self._types[name].implementation

    def __getitem__(self, name: str) -> type[Guard]:
        if name not in self._classes:
            self._classes[name] = self.guard_type(name).guard_class()
        return self._classes[name]

    def __setitem__(self, name: str, guard: type[Guard]) -> None:
        self.register(name, guard)

    def __delitem__(self, name: str) -> None:
        del self._references[name]
        self._types.pop(name, None)
        self._classes.pop(name, None)

    def __contains__(self, name: object) -> bool:
        return name in self._references

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._references))

    def __len__(self) -> int:
        return len(self._references)


REGISTRY = GuardRegistry()
