"""Client keys: who may call the proxy, and which chain their requests use.

The keys file (``--keys-file``) holds a sha256 digest per key, never the key. A
presented key is hashed and compared with every digest in constant time
(``hmac.compare_digest`` over all of them, no early exit), so the time an
answer takes says nothing about how close a guess came. The file is validated
into typed objects like a policy: a bad edit never replaces the keys in force.
"""

from __future__ import annotations

import fnmatch
import hashlib
import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from guardproxy.policy import PolicyError, PolicySet
from guardproxy.policy.loader import DuplicateKeyError, PolicyYamlLoader


def key_digest(key: str) -> str:
    """The hex sha256 of a key, as the keys file stores it."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


class KeyEntry(BaseModel):
    """One client key: its name (in logs, metrics, traces), digest, chain and allowed models."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    sha256: str
    chain: str
    policy: str | None = None  # the policy holding the chain; unset: the default policy
    models: tuple[str, ...] | None = None  # globs of models this key may call; unset: any

    @field_validator("sha256")
    @classmethod
    def _hex_digest(cls, value: str) -> str:
        lowered = value.strip().lower()
        if len(lowered) != 64 or any(c not in "0123456789abcdef" for c in lowered):
            raise ValueError("must be the 64 hex digits of the key's sha256 (guardproxy keys hash < key.txt); "
                             "plain keys are never stored")
        return lowered

    def allows_model(self, model: str | None) -> bool:
        if self.models is None:
            return True
        return model is not None and any(fnmatch.fnmatchcase(model, glob) for glob in self.models)


class KeysFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: int = 1
    keys: tuple[KeyEntry, ...]

    @model_validator(mode="after")
    def _unique(self) -> KeysFile:
        for field in ("name", "sha256"):
            values = [getattr(entry, field) for entry in self.keys]
            repeated = sorted({v for v in values if values.count(v) > 1})
            if repeated:
                shown = ", ".join(repeated if field == "name" else [v[:12] + "…" for v in repeated])
                raise ValueError(f"keys: each key's {field} must be unique: {shown}")
        return self


@dataclass(frozen=True)
class ClientKeys:
    """The keys in force, and where they came from (its digest, for logs)."""

    entries: tuple[KeyEntry, ...]
    source: str
    digest: str

    def find(self, presented: str | None) -> KeyEntry | None:
        """The entry whose digest is the presented key's, compared with every entry in constant time."""
        if not presented:
            return None
        digest = key_digest(presented).encode()
        found: KeyEntry | None = None
        for entry in self.entries:
            if hmac.compare_digest(digest, entry.sha256.encode()):
                found = entry
        return found

    def unbound(self, policies: PolicySet) -> list[str]:
        """Keys whose policy or chain the policy set does not have: one line each."""
        problems = []
        for entry in self.entries:
            policy = policies.get(entry.policy)
            if policy is None:
                problems.append(f"key {entry.name!r}: no policy named {entry.policy!r} is loaded")
            elif entry.chain not in policy.chains:
                problems.append(f"key {entry.name!r}: policy {policy.name!r} has no chain {entry.chain!r}; "
                                f"chains are: {', '.join(sorted(policy.chains))}")
        return problems


def load_keys(path: str, policies: PolicySet | None = None) -> ClientKeys:
    """The keys file, validated (and, given the policies, every key's chain found); PolicyError
    with one line per problem otherwise."""
    file = Path(path)
    try:
        raw = file.read_bytes()
    except OSError as exc:
        raise PolicyError([f"{path}: cannot read the keys file: {exc.strerror or exc}"]) from None
    try:
        data = yaml.load(raw, Loader=PolicyYamlLoader)
    except DuplicateKeyError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else 0
        raise PolicyError([f"{path}:{line}: {exc.problem}"]) from None
    except yaml.YAMLError as exc:
        raise PolicyError([f"{path}: not valid YAML: {exc}"]) from None
    if not isinstance(data, dict):
        raise PolicyError([f"{path}: a keys file is a mapping with a 'keys' list"])
    try:
        keys = KeysFile.model_validate(data)
    except ValidationError as exc:
        raise PolicyError([_problem(path, error) for error in exc.errors()]) from None
    loaded = ClientKeys(keys.keys, path, hashlib.sha256(raw).hexdigest()[:12])
    if policies is not None:
        unbound = loaded.unbound(policies)
        if unbound:
            raise PolicyError([f"{path}: {problem}" for problem in unbound])
    return loaded


def _problem(path: str, error: Mapping[str, Any]) -> str:
    loc = error.get("loc")
    where = ".".join(str(p) for p in loc) if isinstance(loc, Iterable) else ""
    message = str(error.get("msg", "")).removeprefix("Value error, ")
    if error.get("type") == "extra_forbidden":
        message = "unknown key (keys take name, sha256, chain, policy, models)"
    return f"{path}: {where}: {message}" if where else f"{path}: {message}"
