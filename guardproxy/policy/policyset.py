"""Which policy and chain a request gets.

A policy set is the files loaded from one path. Routes are tried file by file
(in file-name order), first match wins. A request no route matches gets the
``default`` chain of the policy named ``default``, or of the first file if no
policy has that name.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass

from guardproxy.policy.schema import Chain, Match, Policy
from guardproxy.policy.shadows import ShadowPolicy


@dataclass(frozen=True)
class LoadedPolicy:
    policy: Policy
    source: str


@dataclass(frozen=True)
class RouteChoice:
    policy: Policy
    chain_name: str
    tag: str  # "<policy name>@<digest>", the x-guardproxy-policy header

    @property
    def chain(self) -> Chain:
        return self.policy.chains[self.chain_name]


def _matches(match: Match, model: str | None, headers: Mapping[str, str], path: str, api: str | None) -> bool:
    if match.model is not None and (model is None or not fnmatch.fnmatchcase(model, match.model)):
        return False
    if match.api is not None and (api is None or not fnmatch.fnmatchcase(api, match.api)):
        return False
    if match.path is not None and match.path != "*" and not fnmatch.fnmatchcase(path, match.path):
        return False
    for name, pattern in match.header.items():
        value = headers.get(name.lower())
        if value is None or not fnmatch.fnmatchcase(value, pattern):
            return False
    return True


class PolicySet:
    def __init__(self, policies: list[LoadedPolicy], digest: str, source: str,
                 shadows: dict[str, ShadowPolicy] | None = None) -> None:
        self.policies = policies
        self.shadows = shadows or {}  # live policy name -> its shadow
        self.digest = digest
        self.source = source
        by_name = {item.policy.name: item.policy for item in policies}
        self.fallback: Policy = by_name.get("default", policies[0].policy)
        self._choices: dict[tuple[int, str], RouteChoice] = {}
        # Whether any route matches on a header: if none does, routing needs no header map.
        self.routes_on_headers = any(route.match.header for item in policies for route in item.policy.routes)

    def _choice(self, policy: Policy, chain: str) -> RouteChoice:
        choice = self._choices.get((id(policy), chain))
        if choice is None:
            choice = self._choices[(id(policy), chain)] = RouteChoice(policy, chain, self.tag(policy))
        return choice

    def shadow_of(self, policy: Policy) -> ShadowPolicy | None:
        return self.shadows.get(policy.name) if policy.shadow is not None else None

    def all_policies(self) -> list[Policy]:
        """The live policies and their shadows: every policy the engine must be able to run."""
        return [item.policy for item in self.policies] + [shadow.policy for shadow in self.shadows.values()]

    def tag(self, policy: Policy) -> str:
        return f"{policy.name}@{self.digest}"

    def get(self, name: str | None) -> Policy | None:
        if name is None:
            return self.fallback
        return next((item.policy for item in self.policies if item.policy.name == name), None)

    def pinned(self, policy_name: str | None, chain: str) -> RouteChoice | None:
        """A named chain (of the named policy, else the default one), whatever the routes say:
        a client key's. None if it is not loaded."""
        policy = self.get(policy_name)
        if policy is None or chain not in policy.chains:
            return None
        return self._choice(policy, chain)

    def select(self, model: str | None, headers: Mapping[str, str], path: str, api: str | None = None) -> RouteChoice:
        """``headers`` must have lower-case names; ``api`` is the dialect's name (``chat``, ``messages``, ...)."""
        for item in self.policies:
            for route in item.policy.routes:
                if _matches(route.match, model, headers, path, api):
                    return self._choice(item.policy, route.chain)
        return self._choice(self.fallback, "default")
