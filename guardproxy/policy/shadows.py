"""Shadow policies: a live policy's ``shadow: PATH`` names a policy file or directory that
runs in monitor mode on the same traffic, so its owners see what it would do before it is live.

A shadow is loaded with the live set and all or nothing like it: an invalid shadow rejects the
load, so a reload never half-applies. Its path is relative to the live policy's file. A shadow
may not have a shadow of its own, and it may not sit among the live policy files (it would then
be loaded as a live policy too). From a directory, the shadow of policy P is the file whose
policy is also named P, else that directory's fallback policy.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from guardproxy.policy.schema import Policy


@dataclass(frozen=True)
class ShadowPolicy:
    """A live policy's shadow: the policy, where it was read, and its tag (``name@digest``)."""

    policy: Policy
    source: str
    tag: str

    def chain_for(self, live_chain: str) -> str:
        """The shadow runs the live request's chain where it has one, else its default chain."""
        return live_chain if live_chain in self.policy.chains else "default"


def shadow_path(live_source: str, shadow: str) -> Path:
    return (Path(live_source).parent / shadow).resolve()


def shadow_problem(live_source: str, live_files: list[Path], shadow: str) -> str | None:
    """Why ``shadow`` (of the live policy read from ``live_source``) cannot be used, if it cannot."""
    path = shadow_path(live_source, shadow)
    live = {file.resolve() for file in live_files}
    if path in live or (path.is_dir() and any(file.parent == path for file in live)):
        return (f"shadow: {shadow!r} is among the live policy files, so it would be loaded as a live policy too; "
                f"keep shadow policies in a directory of their own (e.g. policies/shadow/)")
    return None
