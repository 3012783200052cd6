"""Reading and writing text at a segment's path inside a JSON payload.

Tool and function-call arguments are JSON inside a string. Each string value in
them is its own segment, whose path runs through the ``JSON_MARK`` step; a
rewrite re-serialises the object, so a redaction can never break the JSON that
the tool receives. Text a tool call carries is marked ``call`` (see ``Segment``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

from guardproxy.guards.base import PathPart, Segment

JSON_MARK = "$json"


def argument_segments(arguments: Any, path: tuple[PathPart, ...], role: str | None) -> Iterator[Segment]:
    """The string leaves of a tool call's JSON arguments string, or the whole string when it
    is not JSON; all marked ``call``."""
    if not isinstance(arguments, str) or not arguments:
        return
    try:
        parsed = json.loads(arguments)
    except ValueError:
        yield Segment(arguments, path, role, call=True)
        return
    yield from json_string_leaves(parsed, (*path, JSON_MARK), role, call=True)


def json_string_leaves(value: Any, path: tuple[PathPart, ...], role: str | None,
                       call: bool = False) -> Iterator[Segment]:
    """The string leaves of a JSON value (``call``: a tool call's input)."""
    if isinstance(value, str):
        if value:
            yield Segment(value, path, role, call)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from json_string_leaves(item, (*path, key), role, call)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from json_string_leaves(item, (*path, index), role, call)


def text_segment(value: Any, path: tuple[PathPart, ...], role: str | None, call: bool = False) -> Iterator[Segment]:
    """A non-empty string (``call``: a tool call's free-form input)."""
    if isinstance(value, str) and value:
        yield Segment(value, path, role, call)


def string_segments(value: Any, path: tuple[PathPart, ...], role: str | None = None) -> Iterator[Segment]:
    """A string, or each string of an array of strings (token-id arrays carry no text)."""
    if isinstance(value, str):
        yield from text_segment(value, path, role)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from text_segment(item, (*path, index), role)


def _set(container: Any, path: Sequence[PathPart], value: Any) -> None:
    for part in path[:-1]:
        container = container[part]
    container[path[-1]] = value


def _get(container: Any, path: Sequence[PathPart]) -> Any:
    for part in path:
        container = container[part]
    return container


def _arguments_cut(payload: Any, path: Sequence[PathPart]) -> int | None:
    """Where ``path`` enters a JSON arguments string: its first ``JSON_MARK`` step after a
    string. (A key of a ``tool_use`` input may be spelled ``$json`` too; an object precedes it.)"""
    for index, part in enumerate(path):
        if part == JSON_MARK and isinstance(_get(payload, path[:index]), str):
            return index
    return None


def _json_text(value: Any) -> str:
    """JSON with non-ASCII characters as themselves; a lone surrogate (read from a ``\\ud800``
    escape) stays an escape, since it cannot be written as UTF-8."""
    text = json.dumps(value, ensure_ascii=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(value)
    return text


def apply_texts(payload: Any, rewrites: Sequence[tuple[Segment, str]]) -> None:
    """Write each segment's new text back into ``payload`` in place. A rewrite that changes
    nothing is skipped: an arguments string whose texts all stay keeps its own spelling."""
    arguments: dict[tuple[PathPart, ...], list[tuple[tuple[PathPart, ...], str]]] = {}
    for segment, text in rewrites:
        if text == segment.text:
            continue
        cut = _arguments_cut(payload, segment.path)
        if cut is not None:
            arguments.setdefault(segment.path[:cut], []).append((segment.path[cut + 1 :], text))
        else:
            _set(payload, segment.path, text)
    for path, leaves in arguments.items():
        parsed = json.loads(_get(payload, path))
        for leaf_path, text in leaves:
            if leaf_path:
                _set(parsed, leaf_path, text)
            else:
                parsed = text
        _set(payload, path, _json_text(parsed))
