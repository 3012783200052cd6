"""Retrying an upstream call that failed before it answered (``--upstream-retries N``).

Only what cannot have reached the model is retried: a connection that could not
be opened (refused, unresolvable, not accepted within the connect timeout), and a
502 or 503, which gateways and load balancers answer before any body, so no byte
of it has gone to the client. A 4xx is the request's own fault and is never
retried, nor is a 500 or 504 (the model may have run), nor anything once the
answer's body has started: retrying happens before the reply exists.

A retry needs the request's body again: guarded routes hold it in memory;
pass-through routes stream the client's body through as it arrives, so only those
without a body (GET, HEAD, DELETE, OPTIONS) are retried.

Waits follow "full jitter" (AWS Architecture Blog, "Exponential Backoff And
Jitter"): a random time between zero and ``base * 2**attempt``, capped, so many
proxies retrying at once do not arrive together.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import aiohttp

log = logging.getLogger("guardproxy.proxy")
# Each retry is counted by why (guardproxy_upstream_retries_total{kind}): unreachable, connect_timeout,
# status_502, status_503; telemetry/facade.py lists them to create their series at zero.
RETRIED_STATUSES = {502: "status_502", 503: "status_503"}


@dataclass(frozen=True)
class RetryPolicy:
    """At most ``retries`` retries, waiting up to ``base_seconds * 2**attempt``, never above ``cap_seconds``."""

    retries: int = 0
    base_seconds: float = 0.2
    cap_seconds: float = 2.0

    def delay(self, attempt: int) -> float:
        """The wait before retry ``attempt`` (0 for the first)."""
        return random.uniform(0.0, min(self.cap_seconds, self.base_seconds * 2 ** attempt))


def failure_kind(exc: BaseException) -> str | None:
    """Why a failed call may be retried, or None when it may not."""
    if isinstance(exc, aiohttp.ClientSSLError):  # a certificate will not change on the next try
        return None
    if isinstance(exc, aiohttp.ClientConnectorError):
        return "unreachable"
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return "connect_timeout"
    return None


async def with_retries(
    send: Callable[[], Awaitable[aiohttp.ClientResponse]], policy: RetryPolicy, retried: list[str],
) -> aiohttp.ClientResponse:
    """``send()``'s answer, calling it again (up to ``policy.retries`` times) after a
    failure ``failure_kind`` allows or a 502/503, whose response is closed first. Each
    retry's kind is appended to ``retried`` (the request's report). The last attempt's
    answer or exception is the caller's."""
    attempt = 0
    while True:
        try:
            response = await send()
        except aiohttp.ClientError as exc:
            kind = failure_kind(exc)
            if kind is None or attempt >= policy.retries:
                raise
        else:
            kind = RETRIED_STATUSES.get(response.status)
            if kind is None or attempt >= policy.retries:
                return response
            response.close()  # not read: the connection is dropped rather than drained
        retried.append(kind)
        log.warning("upstream call failed before answering (%s); retry %d of %d", kind, attempt + 1, policy.retries)
        await asyncio.sleep(policy.delay(attempt))
        attempt += 1
