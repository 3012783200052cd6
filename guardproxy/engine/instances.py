"""The guard instances an engine keeps: one per guard type and settings, built on first use.

Instances are shared by identical settings, so a policy reload that keeps a
guard's settings keeps its loaded model (and its findings cache). After a
reload, ``retain`` drops the instances the new policies do not use, so their
models and caches can be freed instead of piling up with every edit.

A request that began under the old policies may still run their chains (its
output stage, every window of a stream). It must not rebuild an unwarmed guard
on the event loop for that, so the instances ``prepare`` built for a policy stay
reachable through that policy object: for as long as some request holds it,
and no longer (a weak reference to the policy drops them with it).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from guardproxy.engine.findings_cache import FindingsCache
from guardproxy.engine.pool import ScanTimes
from guardproxy.guards import REGISTRY, Guard
from guardproxy.guards.base import GuardKind, findings_cacheable, guard_kind
from guardproxy.policy.schema import GuardEntry, Policy

InstanceKey = tuple[str, str]  # guard type, settings as JSON


def instance_key(entry: GuardEntry) -> InstanceKey:
    return entry.guard, entry.settings.model_dump_json()


def policy_entries(policy: Policy) -> Iterator[GuardEntry]:
    for chain in policy.chains.values():
        yield from chain.input
        yield from chain.output


@dataclass(frozen=True, slots=True)
class GuardInstance:
    """A guard built from one set of settings, with what the engine keeps beside it."""

    guard: Guard
    kind: GuardKind  # read once: it may depend on the settings, which an instance fixes
    cache: FindingsCache | None  # when the guard declares ``cacheable``
    times: ScanTimes = field(default_factory=ScanTimes)


@dataclass(frozen=True, slots=True)
class _PolicyInstances:
    policy: weakref.ref[Policy]
    instances: dict[InstanceKey, GuardInstance]


class GuardInstances:
    """The instances of the current policies, and those of older policies still held by requests."""

    def __init__(self, findings_cache_size: int) -> None:
        self._findings_cache_size = findings_cache_size
        self._current: dict[InstanceKey, GuardInstance] = {}
        self._by_policy: dict[int, _PolicyInstances] = {}  # id(policy), for prepared policies still alive

    def __len__(self) -> int:
        return len(self._current)

    def get(self, entry: GuardEntry, policy: Policy | None = None) -> GuardInstance:
        """The instance for ``entry``: the current one, else the one prepared for ``policy``,
        else a new one (built here, warmed by its first scan)."""
        key = instance_key(entry)
        instance = self._current.get(key)
        if instance is None and policy is not None:
            kept = self._by_policy.get(id(policy))
            if kept is not None and kept.policy() is policy:
                instance = kept.instances.get(key)
        if instance is None:
            instance = self._current.setdefault(key, self._build(entry))
        return instance

    def _build(self, entry: GuardEntry) -> GuardInstance:
        guard = REGISTRY[entry.guard](entry.settings)
        cache = FindingsCache(self._findings_cache_size) if findings_cacheable(guard) else None
        return GuardInstance(guard, guard_kind(guard), cache)

    def prepare(self, policies: Sequence[Policy]) -> None:
        """Build and warm every guard the policies use, and keep them with each policy (blocking)."""
        for policy in policies:
            used: dict[InstanceKey, GuardInstance] = {}
            for entry in policy_entries(policy):
                instance = self.get(entry)
                instance.guard.warm()
                used[instance_key(entry)] = instance
            self._by_policy[id(policy)] = _PolicyInstances(weakref.ref(policy, self._forget(id(policy))), used)

    def _forget(self, policy_id: int) -> Callable[[weakref.ref[Policy]], None]:
        by_policy = self._by_policy  # not self: the callback must not keep the engine alive

        def forget(_: weakref.ref[Policy]) -> None:
            by_policy.pop(policy_id, None)

        return forget

    def retain(self, policies: Sequence[Policy]) -> int:
        """Drop the current instances ``policies`` do not use; how many were dropped."""
        used = {instance_key(entry) for policy in policies for entry in policy_entries(policy)}
        kept = {key: instance for key, instance in self._current.items() if key in used}
        dropped = len(self._current) - len(kept)
        self._current = kept
        return dropped
