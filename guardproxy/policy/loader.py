"""Reading policy files into validated ``Policy`` objects.

Errors name the file, the line, the key path and the problem, in the form
``policies/default.yaml:12: chains.default.input.0.action: Input should be ...``.
A set of files loads all or nothing, so a bad edit never half-replaces a policy.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from guardproxy.policy.policyset import LoadedPolicy, PolicySet
from guardproxy.policy.schema import Policy


class PolicyError(Exception):
    """One or more policy files are invalid; ``problems`` holds one line each."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


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


def parse_policy(text: str, source: str) -> Policy:
    """Validate one file's text; raise ``PolicyError`` naming ``source``."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark is not None else source
        problem = getattr(exc, "problem", None) or str(exc)
        raise PolicyError([f"{where}: not valid YAML: {problem}"]) from None
    if not isinstance(data, dict):
        raise PolicyError([f"{source}:1: a policy file must be a mapping with keys version, name, chains"])
    try:
        return Policy.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            loc = tuple(p for p in error["loc"] if not str(p).startswith("function-"))
            line = _line_of(node, loc)
            where = f"{source}:{line}" if line else source
            key_path = ".".join(str(p) for p in loc) or "(top level)"
            problems.append(f"{where}: {key_path}: {_describe(error)}")
        raise PolicyError(problems) from None


def load_policy_set(path: str | Path) -> PolicySet:
    """Load every policy file under ``path``; all must be valid or none is used."""
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
            loaded.append(LoadedPolicy(policy=parse_policy(text, str(file)), source=str(file)))
        except PolicyError as exc:
            problems.extend(exc.problems)
    names = [item.policy.name for item in loaded]
    for name in sorted({n for n in names if names.count(n) > 1}):
        sources = ", ".join(item.source for item in loaded if item.policy.name == name)
        problems.append(f"{root}: policy name {name!r} is used by more than one file: {sources}")
    if problems:
        raise PolicyError(problems)
    return PolicySet(loaded, digest.hexdigest()[:12], str(root))
