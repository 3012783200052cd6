"""The upstream LLM API: pooled clients, header rules and failure mapping.

Two clients share the upstream, each chosen by measurement (benchmarks/README.md):

- the relay, which every proxied request crosses, uses an ``aiohttp`` session
  directly: httpx's default transport collapses under concurrency (450 req/s at
  16 concurrent pass-through requests here), and httpx's API even over
  httpx-aiohttp's transport halves a relay's throughput (3,330 req/s against
  8,670 for the same relay on aiohttp at 16 concurrent requests);
- guards that call a model (moderation, an LLM judge) use httpx's API on
  httpx-aiohttp's transport, where a call costs a model's latency and the API's
  convenience costs nothing that shows.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote, urlsplit

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport

from guardproxy.guards.base import UpstreamCallError

HOP_BY_HOP = frozenset(
    {
        "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection",
        "te", "trailer", "trailers", "transfer-encoding", "upgrade",
    }
)
_REQUEST_DROP = HOP_BY_HOP | {"host", "content-length"}
_RESPONSE_DROP = HOP_BY_HOP | {"content-length", "date", "server"}
OWN_PREFIX = "x-guardproxy-"
_RESPONSE_DROP_RAW = frozenset(name.encode() for name in _RESPONSE_DROP)
_OWN_PREFIX_RAW = OWN_PREFIX.encode()
_PATH_SAFE = "/:@!$&'()*+,=-._~"  # left as they are when a canonical path goes back on the wire


@functools.lru_cache(maxsize=1024)
def url_path(path: str) -> str:
    """A canonical (decoded) path as it goes on the wire to the upstream."""
    return quote(path, safe=_PATH_SAFE)


# Where each upstream takes its key: OpenAI's Authorization, Anthropic's x-api-key, Azure's api-key.
KEY_HEADERS = {"openai": "authorization", "anthropic": "x-api-key", "azure": "api-key"}
_CLIENT_KEYS = frozenset(KEY_HEADERS.values())
_REQUEST_DROP_KEYS = _REQUEST_DROP | _CLIENT_KEYS
_RESPONSE_DROP_DECODED_RAW = _RESPONSE_DROP_RAW | {b"content-encoding"}


def request_headers(incoming: Iterable[tuple[str, str]], upstream_key: str | None,
                    key_header: str = "authorization", strip_client_keys: bool = False) -> list[tuple[str, str]]:
    """Headers to send upstream: the client's, minus hop-by-hop, host, content-length,
    those its ``Connection`` header lists, and the proxy's own. When the operator set a
    key, or the client's key is one of the proxy's own (``strip_client_keys``, with a
    keys file), every key the client sent (``Authorization``, ``x-api-key``,
    ``api-key``) is dropped; the operator's goes in ``key_header``."""
    drop = _REQUEST_DROP_KEYS if upstream_key is not None or strip_client_keys else _REQUEST_DROP
    out = []
    listed: list[str] = []
    for name, value in incoming:  # one pass: this runs on every proxied request
        lowered = name.lower()
        if lowered in drop or lowered.startswith(OWN_PREFIX):
            if lowered == "connection":
                listed.append(value)
            continue
        out.append((name, value))
    if listed:
        named = _tokens(listed)
        out = [(name, value) for name, value in out if name.lower() not in named]
    if upstream_key is not None:
        out.append((key_header, f"Bearer {upstream_key}" if key_header == "authorization" else upstream_key))
    return out


def response_headers(incoming: Iterable[tuple[bytes, bytes]], decoded: bool) -> list[tuple[bytes, bytes]]:
    """Upstream response headers for the client, names in lower case as ASGI wants
    them, minus hop-by-hop, length, date, server, those its ``Connection`` header lists,
    and any named like the proxy's own. ``decoded`` drops the content encoding too, for
    bodies the proxy read (and possibly rewrote)."""
    drop = _RESPONSE_DROP_DECODED_RAW if decoded else _RESPONSE_DROP_RAW
    out = []
    listed: list[str] = []
    for name, value in incoming:
        lowered = name.lower()
        if lowered in drop or lowered.startswith(_OWN_PREFIX_RAW):
            if lowered == b"connection":
                listed.append(value.decode("latin-1"))
            continue
        out.append((lowered, value))
    if listed:
        named = {token.encode("latin-1") for token in _tokens(listed)}
        out = [(name, value) for name, value in out if name not in named]
    return out


def _tokens(values: list[str]) -> set[str]:
    """The header names that ``Connection`` header values list."""
    return {token.strip().lower() for value in values for token in value.split(",") if token.strip()}


@dataclass(frozen=True)
class UpstreamFailure:
    """How the proxy answers an upstream failure (``code`` in the error body), and the
    ``kind`` it is counted as in ``guardproxy_upstream_errors_total``."""

    status: Literal[502, 504]
    code: str
    message: str
    kind: str


class UpstreamRedirect(aiohttp.ClientError):
    """The upstream answered with a redirect. The proxy follows none (the operator's key
    goes to the configured upstream only) and relays none: a client SDK that follows
    the ``Location`` would send its own key there."""

    def __init__(self, status: int, location: str) -> None:  # the host only: a URL may carry a signed token
        super().__init__(f"{status} redirect to {urlsplit(location).hostname or 'a path on the upstream'}, "
                         "not followed")
        self.status = status


def classify_failure(exc: BaseException) -> UpstreamFailure:
    """Map a transport exception to 502 (unreachable, broken, redirected) or 504 (timed out).

    The relay raises aiohttp's exceptions; the guards' httpx client raises httpx's,
    whose aiohttp cause is read first: httpx-aiohttp maps a refused connection to
    ``httpx.ConnectTimeout``, which would otherwise read as a timeout.
    """
    cause = exc.__cause__ if exc.__cause__ is not None else exc
    if isinstance(exc, UpstreamRedirect):
        return UpstreamFailure(502, "upstream_redirect", "The upstream API answered with a redirect, which the "
                               "proxy does not follow.", "redirect")
    if isinstance(exc, (aiohttp.ClientConnectorError, httpx.ConnectError)) or isinstance(
            cause, aiohttp.ClientConnectorError):
        return UpstreamFailure(502, "upstream_unreachable", "The upstream API could not be reached.", "unreachable")
    if isinstance(cause, (TimeoutError, asyncio.TimeoutError, aiohttp.ServerTimeoutError)) or (
        cause is exc and isinstance(exc, httpx.TimeoutException)
    ):
        return UpstreamFailure(504, "upstream_timeout", "The upstream API did not answer in time.", "timeout")
    return UpstreamFailure(502, "upstream_error", "The upstream API connection failed.", "error")


UPSTREAM_ERRORS: tuple[type[BaseException], ...] = (
    httpx.HTTPError, aiohttp.ClientError, TimeoutError, asyncio.TimeoutError, OSError,
)


def redirect_of(response: aiohttp.ClientResponse) -> UpstreamRedirect | None:
    """A 3xx with a ``Location`` (not a 304, which has none) is a redirect."""
    location = response.headers.get("location")
    if 300 <= response.status < 400 and location is not None:
        return UpstreamRedirect(response.status, location)
    return None


def stream_timeout(connect_timeout: float, read_timeout: float) -> aiohttp.ClientTimeout:
    """The relay session's timeout less aiohttp's read timeout, for unguarded streams: the
    wait for the answer's headers is bounded by the caller, its silences by ``SilenceWatch``."""
    return aiohttp.ClientTimeout(total=None, connect=connect_timeout + read_timeout, sock_connect=connect_timeout)


def create_relay_session(connect_timeout: float, read_timeout: float, max_connections: int) -> aiohttp.ClientSession:
    """The relay's pooled session, created in the app's lifespan.

    Bodies arrive as sent (``auto_decompress`` off; a request that reads them asks
    for identity and decodes), and aiohttp adds none of its own headers: what the
    upstream sees is what the client sent, less the hop-by-hop headers.
    ``read_timeout`` is the longest silence allowed between bytes from the upstream,
    which for a stream is the gap between two chunks; waiting for a pooled
    connection and connecting share ``connect_timeout + read_timeout``.
    """
    connector = aiohttp.TCPConnector(limit=max_connections, limit_per_host=max_connections, ttl_dns_cache=60,
                                     enable_cleanup_closed=False)
    timeout = aiohttp.ClientTimeout(total=None, connect=connect_timeout + read_timeout,
                                    sock_connect=connect_timeout, sock_read=read_timeout)
    # Unguarded streams are called with stream_timeout(): no read timeout, which relay.SilenceWatch keeps.
    return aiohttp.ClientSession(
        connector=connector, timeout=timeout, auto_decompress=False, trust_env=False,
        skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
        cookie_jar=aiohttp.DummyCookieJar(),
    )


def create_client(connect_timeout: float, read_timeout: float, max_connections: int) -> httpx.AsyncClient:
    """The one shared client, created in the app's lifespan.

    ``read_timeout`` is the longest silence allowed between bytes from the
    upstream, which for a stream is the gap between two chunks.
    """
    limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
    transport = AiohttpTransport(limits=limits, trust_env=False)
    client = httpx.AsyncClient(
        transport=transport,
        timeout=httpx.Timeout(connect=connect_timeout, read=read_timeout, write=read_timeout, pool=read_timeout),
        follow_redirects=False,
        trust_env=False,
    )
    for name in list(client.headers.keys()):  # httpx's defaults (user-agent, accept...) are not the client's
        del client.headers[name]
    return client


class GuardUpstreamClient:
    """``UpstreamClient`` for guards: a JSON POST on the proxy's own httpx client, with the
    request's credentials, awaited on the event loop by an ``io`` guard."""

    def __init__(self, client: httpx.AsyncClient, base_url: str, authorization: str | None) -> None:
        self._client = client
        self._base = base_url.rstrip("/")
        self._headers = {"authorization": authorization} if authorization else {}

    async def post_json(self, path: str, body: Mapping[str, Any], timeout: float) -> Any:
        try:
            async with asyncio.timeout(timeout):
                response = await self._client.post(self._base + "/" + path.lstrip("/"), json=dict(body),
                                                   headers=self._headers, timeout=timeout)
        except TimeoutError:  # this call's own deadline: the engine's timeout cancels instead
            raise UpstreamCallError(f"no answer from {path} within {timeout:.1f} s") from None
        except UPSTREAM_ERRORS as exc:
            raise UpstreamCallError(f"{path}: {classify_failure(exc).code}") from None
        if response.status_code >= 300:
            raise UpstreamCallError(f"{path}: upstream answered {response.status_code}")
        try:
            return response.json()
        except ValueError:
            raise UpstreamCallError(f"{path}: the upstream's answer is not JSON") from None
