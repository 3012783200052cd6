"""Reading policy files into validated ``Policy`` objects.

Errors name the file, the line, the key path and the problem, in the form
``policies/default.yaml:12: chains.default.input.0.action: Input should be ...``.
A set of files loads all or nothing, so a bad edit never half-replaces a policy.

A key repeated in one mapping is an error (``policies/p.yaml:7: duplicate key
'action'``): YAML loaders otherwise keep the last value silently, so
``{guard: keywords, action: block, action: flag}`` would flag what its author
may have read as a block. Guard entries are validated against the guard types
passed in (the registry by default), never by importing guards here.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from guardproxy.guards.registry import REGISTRY
from guardproxy.policy.policyset import LoadedPolicy, PolicySet
from guardproxy.policy.schema import GUARD_TYPES, GuardTypes, Policy
from guardproxy.policy.shadows import ShadowPolicy, shadow_path, shadow_problem


class PolicyError(Exception):
    """One or more policy files are invalid; ``problems`` holds one line each."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class DuplicateKeyError(yaml.MarkedYAMLError):
    """A mapping names the same key twice; ``mapping`` is that mapping's node."""

    def __init__(self, problem: str, problem_mark: yaml.Mark, mapping: yaml.MappingNode) -> None:
        super().__init__(problem=problem, problem_mark=problem_mark)
        self.mapping = mapping


class PolicyYamlLoader(yaml.SafeLoader):
    """YAML's safe loader, except that a key repeated in a mapping, at any depth, is an error.

    Keys merged in with ``<<`` may be overridden, as YAML intends; only keys written
    in the mapping itself must be unique."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, yaml.Mark] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.get(key)
                except TypeError:
                    continue  # an unhashable key: SafeLoader reports it below
                if first is not None:
                    also = f" (also on line {first.line + 1})" if first.line != key_node.start_mark.line else ""
                    raise DuplicateKeyError(f"duplicate key {key!r}{also}: a key may appear only once in a mapping",
                                            key_node.start_mark, node)
                seen[key] = key_node.start_mark
        mapping: dict[Any, Any] = super().construct_mapping(node, deep=deep)
        return mapping


def policy_files(path: Path) -> list[Path]:
    """A file, or the ``*.yaml``/``*.yml`` files directly inside a directory (sorted)."""
    if path.is_dir():
        files = sorted([*path.glob("*.yaml"), *path.glob("*.yml")])
        if not files:
            raise PolicyError([f"{path}: no *.yaml policy files in this directory"])
        return files
    if not path.exists():
        raise PolicyError([f"{path}: no such file or directory"])
    return [path]


def _line_of(node: yaml.Node | None, loc: tuple[int | str, ...]) -> int | None:
    """The 1-based line of the deepest YAML node that ``loc`` reaches."""
    if node is None:
        return None
    line = node.start_mark.line + 1
    for part in loc:
        child: yaml.Node | None = None
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode) and key.value == str(part):
                    child = value
                    break
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
            child = node.value[part]
        if child is None:
            break
        node = child
        line = node.start_mark.line + 1
    return line


def _describe(error: Any) -> str:
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        return "unknown key (check its spelling; unknown keys are never ignored)"
    if error["type"] == "missing":
        return "required key is missing"
    return message


def _key_path(node: yaml.Node, target: yaml.Node) -> list[str] | None:
    """The keys and indices that lead from ``node`` to ``target``, if it is inside."""
    if node is target:
        return []
    children: list[tuple[str, yaml.Node]] = []
    if isinstance(node, yaml.MappingNode):
        children = [(str(key.value), value) for key, value in node.value if isinstance(key, yaml.ScalarNode)]
    elif isinstance(node, yaml.SequenceNode):
        children = [(str(index), value) for index, value in enumerate(node.value)]
    for part, child in children:
        found = _key_path(child, target)
        if found is not None:
            return [part, *found]
    return None


def _read_yaml(text: str, source: str) -> tuple[yaml.Node | None, Any]:
    """The document's node tree (for line numbers) and its data, parsed once."""
    loader = PolicyYamlLoader(text)
    node: yaml.Node | None = None
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except DuplicateKeyError as exc:
        assert exc.problem_mark is not None
        path = _key_path(node, exc.mapping) if node is not None else None
        where = f"{source}:{exc.problem_mark.line + 1}" + (f": {'.'.join(path)}" if path else "")
        raise PolicyError([f"{where}: {exc.problem}"]) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark is not None else source
        problem = getattr(exc, "problem", None) or str(exc)
        raise PolicyError([f"{where}: not valid YAML: {problem}"]) from None
    finally:
        loader.dispose()
    return node, data


def parse_policy(text: str, source: str, guard_types: GuardTypes = REGISTRY) -> Policy:
    """Validate one file's text; raise ``PolicyError`` naming ``source``. ``guard_types``
    are the guards its entries may name (the registry: built-ins and entry points)."""
    node, data = _read_yaml(text, source)
    if not isinstance(data, dict):
        raise PolicyError([f"{source}:1: a policy file must be a mapping with keys version, name, chains"])
    try:
        return Policy.model_validate(data, context={GUARD_TYPES: guard_types})
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            loc = tuple(p for p in error["loc"] if not str(p).startswith("function-"))
            line = _line_of(node, loc)
            where = f"{source}:{line}" if line else source
            key_path = ".".join(str(p) for p in loc) or "(top level)"
            problems.append(f"{where}: {key_path}: {_describe(error)}")
        raise PolicyError(problems) from None


def _load_shadows(loaded: list[LoadedPolicy], files: list[Path], guard_types: GuardTypes,
                  problems: list[str]) -> dict[str, ShadowPolicy]:
    """Each live policy's shadow, by live policy name; problems are added to ``problems``."""
    shadows: dict[str, ShadowPolicy] = {}
    for item in loaded:
        shadow = item.policy.shadow
        if shadow is None:
            continue
        problem = shadow_problem(item.source, files, shadow)
        if problem is not None:
            problems.append(f"{item.source}: {problem}")
            continue
        try:
            shadow_set = load_policy_set(shadow_path(item.source, shadow), guard_types, shadows=False)
        except PolicyError as exc:
            problems.extend(f"{item.source}: shadow: {line}" for line in exc.problems)
            continue
        policy = shadow_set.get(item.policy.name) or shadow_set.fallback
        source = next(i.source for i in shadow_set.policies if i.policy is policy)
        if policy.shadow is not None:
            problems.append(f"{source}: shadow: a shadow policy cannot have a shadow of its own")
            continue
        shadows[item.policy.name] = ShadowPolicy(policy, source, shadow_set.tag(policy))
    return shadows


def load_policy_set(path: str | Path, guard_types: GuardTypes = REGISTRY, *, shadows: bool = True) -> PolicySet:
    """Load every policy file under ``path`` and their shadows; all must be valid or none is used."""
    root = Path(path)
    files = policy_files(root)
    digest = hashlib.sha256()
    loaded: list[LoadedPolicy] = []
    problems: list[str] = []
    for file in files:
        try:
            raw = file.read_bytes()
            text = raw.decode("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(f"{file}: cannot read: {exc}")
            continue
        digest.update(file.name.encode() + b"\0" + raw + b"\0")
        try:
            loaded.append(LoadedPolicy(policy=parse_policy(text, str(file), guard_types), source=str(file)))
        except PolicyError as exc:
            problems.extend(exc.problems)
    names = [item.policy.name for item in loaded]
    for name in sorted({n for n in names if names.count(n) > 1}):
        sources = ", ".join(item.source for item in loaded if item.policy.name == name)
        problems.append(f"{root}: policy name {name!r} is used by more than one file: {sources}")
    shadow_policies = _load_shadows(loaded, files, guard_types, problems) if shadows and not problems else {}
    if problems:
        raise PolicyError(problems)
    return PolicySet(loaded, digest.hexdigest()[:12], str(root), shadow_policies)
