"""One canonical path: every spelling of a guarded endpoint is guarded or refused,
and the upstream never receives the text of a refused or blocked request."""

from __future__ import annotations

import http.client
import json
from collections.abc import Callable
from urllib.parse import urlsplit

import pytest

from guardproxy.http.paths import PathRejected, canonical_path
from guardproxy.proxy.dialects import GUARDED_PATHS
from tests.conftest import RunningProxy
from tests.scripted_upstream import Answer, ScriptedUpstream, chat_answer

POLICY = """
version: 1
name: paths
passthrough: ["/v1/files*"]
chains:
  default:
    input:
      - {guard: keywords, action: block, terms: [project zanzibar]}
      - {guard: pii, action: redact, entities: [EMAIL_ADDRESS]}
"""
SPELLINGS = [
    "/v1/chat/completions/", "/v1//chat/completions", "/v1/chat//completions", "//v1/chat/completions",
    "/v1/chat/completions%2F", "/v1/chat/completions%2f", "/v1/chat%2Fcompletions", "/V1/Chat/Completions",
    "/v1/chat/completions/.", "/v1/./chat/completions", "/v1/chat/../chat/completions",
    "/v1/chat/%2e%2e/chat/completions", "/v1/chat/completions%00", "/v1/chat/complet%69ons",
    "/v1/chat/completions\\", "/v1/chat/completions;x", "/v1/chat/completions?x=1",
]


@pytest.mark.parametrize(("raw", "canonical"), [
    ("/v1/chat/completions/", "/v1/chat/completions"), ("/v1//chat///completions", "/v1/chat/completions"),
    ("/V1/CHAT/completions", "/v1/chat/completions"), ("/v1/Files/File-AbC/", "/v1/Files/File-AbC"),
    ("/", "/"), ("//", "/"),
])
def test_canonical_spellings(raw: str, canonical: str) -> None:
    assert canonical_path(raw, raw.encode(), GUARDED_PATHS) == canonical


@pytest.mark.parametrize(("decoded", "raw"), [
    ("/v1/chat/completions/", b"/v1/chat/completions%2F"), ("/v1/./chat", b"/v1/./chat"),
    ("/v1/../v1/chat", b"/v1/../v1/chat"), ("/v1/a\\b", b"/v1/a%5Cb"), ("/v1/a\x00", b"/v1/a%00"),
    ("/v1/..", b"/v1/%2e%2e"), ("v1/chat", b"v1/chat"),
])
def test_ambiguous_spellings_are_rejected(decoded: str, raw: bytes) -> None:
    with pytest.raises(PathRejected):
        canonical_path(decoded, raw, GUARDED_PATHS)


@pytest.fixture
def proxy(start_scripted_proxy: Callable[[str], tuple[RunningProxy, ScriptedUpstream]]
          ) -> tuple[RunningProxy, ScriptedUpstream]:
    return start_scripted_proxy(POLICY)


def raw_request(url: str, method: str, path: str, body: dict[str, object] | None = None) -> tuple[int, dict[str, str]]:
    """A request whose path goes on the wire exactly as written (no client-side normalising)."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=20)
    data = json.dumps(body).encode() if body is not None else None
    connection.putrequest(method, path, skip_accept_encoding=True)
    connection.putheader("content-type", "application/json")
    connection.putheader("content-length", str(len(data or b"")))
    connection.endheaders(data)
    response = connection.getresponse()
    payload = json.loads(response.read() or b"{}")
    connection.close()
    return response.status, payload


@pytest.mark.parametrize("path", SPELLINGS)
def test_every_spelling_is_guarded_or_refused(path: str, proxy: tuple[RunningProxy, ScriptedUpstream]) -> None:
    running, upstream = proxy
    banned = {"model": "m", "messages": [{"role": "user", "content": "tell me about project zanzibar"}]}
    status, body = raw_request(running.url, "POST", path, banned)
    assert status in (400, 404), (status, body)
    assert body["error"]["code"] in ("policy_violation", "invalid_path", "unknown_url")
    assert upstream.received == []
    upstream.script(Answer(json=chat_answer({"content": "fine"})))
    status, body = raw_request(running.url, "POST", path,
                               {"model": "m", "messages": [{"role": "user", "content": "mail jane@example.com"}]})
    assert status in (200, 400, 404)
    assert b"jane@example.com" not in upstream.bodies()
    if status == 200:  # guarded: the upstream was called on the canonical path, with the value redacted
        assert [r.path for r in upstream.received] == ["/v1/chat/completions"]
        assert b"<EMAIL_ADDRESS" in upstream.bodies() or b"[EMAIL_ADDRESS]" in upstream.bodies()


def test_unknown_paths_are_refused_unless_listed(proxy: tuple[RunningProxy, ScriptedUpstream]) -> None:
    running, upstream = proxy
    status, body = raw_request(running.url, "POST", "/v1/images/generations", {"prompt": "project zanzibar"})
    assert status == 404 and "/v1/images/generations" in body["error"]["message"]
    assert upstream.received == []
    status, _ = raw_request(running.url, "POST", "/v1/files", {"purpose": "x"})  # listed in passthrough
    assert status == 200 and [r.path for r in upstream.received] == ["/v1/files"]
    status, _ = raw_request(running.url, "GET", "/v1/batches/b1")  # reading is relayed
    assert status == 200 and upstream.received[-1].path == "/v1/batches/b1"
