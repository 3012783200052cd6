"""One canonical spelling of every request path, decided before routing.

A guardrail cannot leave it to the upstream to decide whether
``/v1/chat/completions/`` or ``/v1//chat/completions`` is the chat endpoint: if the
proxy routed them as unknown paths and the upstream normalised them, every guard
would be bypassed. So the proxy routes, and forwards upstream, exactly one
canonical path: repeated slashes merged, a trailing slash dropped, and the
spelling of a guarded endpoint matched without regard to case. Paths whose
meaning differs between servers are refused with a 400: dot segments, encoded
slashes, backslashes and other encoded separators, control characters.
"""

from __future__ import annotations

import re

# Percent-encoded '/', '\\', '.', '?', '#', ';' and NUL in the raw path: servers disagree about them.
_ENCODED_SEPARATOR = re.compile(rb"%(?:2[fFeE]|5[cC]|3[fFbB]|23|00)")
_CONTROL = re.compile(r"[\x00-\x1f\x7f\\]")
_SLASHES = re.compile(r"/{2,}")


class PathRejected(ValueError):
    """The path cannot be given one meaning; the message says why (without echoing it)."""


def canonical_path(path: str, raw_path: bytes | None, guarded: frozenset[str]) -> str:
    """The path to route on and forward. ``path`` is the ASGI (percent-decoded) path,
    ``raw_path`` the bytes on the wire; ``guarded`` the guarded endpoints' paths."""
    if path in guarded and (raw_path is None or raw_path == path.encode("ascii")):
        return path
    if raw_path is not None and _ENCODED_SEPARATOR.search(raw_path):
        raise PathRejected("encoded path separators ('%2F', '%5C', '%2E', ...) are not accepted")
    if _CONTROL.search(path):
        raise PathRejected("control characters and backslashes are not accepted in the path")
    if not path.startswith("/"):
        raise PathRejected("the path must start with '/'")
    merged = _SLASHES.sub("/", path)
    segments = merged.split("/")
    if any(segment in (".", "..") for segment in segments):
        raise PathRejected("dot segments ('.', '..') are not accepted in the path")
    if len(merged) > 1:
        merged = merged.rstrip("/") or "/"
    lowered = merged.lower()
    return lowered if lowered in guarded else merged
