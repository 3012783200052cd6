"""JSON for request and answer bodies: orjson, with the standard library behind it.

orjson parses and writes several times faster, which matters on a path every
request takes twice. It refuses ``NaN`` and reads integers beyond 64 bits as
floats, losing digits; bodies that may hold either go to the standard library,
so nothing the proxy re-serialises is ever changed by the parser.

Every body the proxy cannot represent faithfully is refused with ``ValueError``
(the caller answers 400): invalid UTF-8, a lone surrogate escape (``"\\ud800"``,
which is no character and cannot be written back), a number beyond the range of a
double (``1e400``, which would come back as ``Infinity``), and nesting deeper than
``MAX_DEPTH`` (a depth bomb). ``NaN`` and ``Infinity``, which are not JSON but which
Python's parser and some servers accept, are written back as they came.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import orjson

MAX_DEPTH = 256
_LONG_NUMBER = re.compile(rb"\d{19}")
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
_NESTING = re.compile(rb"[\[{]")


def loads(data: bytes) -> Any:
    """Raises ``ValueError`` for a body that is not JSON the proxy can relay faithfully."""
    if not _LONG_NUMBER.search(data):
        try:
            return orjson.loads(data)  # refuses invalid UTF-8, lone surrogates and nesting past 1024
        except orjson.JSONDecodeError:
            pass
    return _stdlib_loads(data)


def _stdlib_loads(data: bytes) -> Any:
    text = data.decode("utf-8")  # UnicodeDecodeError is a ValueError
    if _depth(data) > MAX_DEPTH:
        raise ValueError(f"JSON nested deeper than {MAX_DEPTH} levels")
    value = json.loads(text, parse_constant=_Constant, parse_float=_finite)
    if _SURROGATE_ESCAPE.search(data):
        try:
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("a string holds a lone surrogate escape, which is not a character") from None
    return value


class _Constant(float):
    """``NaN``, ``Infinity`` or ``-Infinity`` as read: orjson refuses to write it (it would
    write ``null``), so ``dumps`` falls back to the standard library, which writes it back."""


def _finite(literal: str) -> float:
    value = float(literal)
    if math.isinf(value):
        raise ValueError("a number is beyond the range of a double")
    return value


def _depth(data: bytes) -> int:
    """An upper bound of the nesting depth (brackets inside strings count too), cheap
    enough to run before the recursive parser, which a depth bomb would crash."""
    if len(_NESTING.findall(data, 0, MAX_DEPTH * 4 + 1)) <= MAX_DEPTH:
        return 0 if len(data) <= MAX_DEPTH * 4 else _exact_depth(data)
    return _exact_depth(data)


def _exact_depth(data: bytes) -> int:
    depth = deepest = 0
    in_string = escaped = False
    for byte in data:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:
                escaped = True
            elif byte == 0x22:
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > MAX_DEPTH:
                    return deepest
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return deepest


def dumps(value: Any) -> bytes:
    """Compact UTF-8, non-ASCII characters as themselves."""
    try:
        return orjson.dumps(value)
    except TypeError:  # an integer beyond 64 bits or a _Constant, read by the fallback above
        return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()
