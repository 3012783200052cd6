"""The one reply type of the proxied routes: a status, raw headers, and a body that is
either complete (sent with its length in one piece) or relayed piece by piece."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from guardproxy.proxy.relay import RawRelay

RawHeaders = list[tuple[bytes, bytes]]
_JSON = (b"content-type", b"application/json")


class Reply:
    """``chunks``, when set, is relayed as it yields and ``body`` is ignored; so is
    ``relay``, an upstream body relayed unread (``relay.RawRelay``). With
    ``watch_disconnect`` (streams whose request body was read to its end), a client
    that leaves cancels the relay, whose ``finally`` closes the upstream response."""

    __slots__ = ("body", "chunks", "headers", "relay", "status", "watch_disconnect")

    def __init__(self, status: int, headers: RawHeaders, body: bytes = b"",
                 chunks: AsyncIterator[bytes] | None = None, watch_disconnect: bool = False,
                 relay: RawRelay | None = None) -> None:
        self.status = status
        self.headers = headers
        self.body = body
        self.chunks = chunks
        self.relay = relay
        self.watch_disconnect = watch_disconnect

    @classmethod
    def json(cls, status: int, payload: Any, headers: RawHeaders | None = None) -> Reply:
        return cls(status, [_JSON, *(headers or [])], orjson.dumps(payload))


def verdict_headers(verdict: str, tag: str) -> RawHeaders:
    """``x-guardproxy-verdict`` and ``x-guardproxy-policy``: what the client learns of the decision."""
    return list(_verdict_headers(verdict, tag))


@functools.lru_cache(maxsize=64)
def _verdict_headers(verdict: str, tag: str) -> tuple[tuple[bytes, bytes], ...]:
    return ((b"x-guardproxy-verdict", verdict.encode()), (b"x-guardproxy-policy", tag.encode()))
