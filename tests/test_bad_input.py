"""Bad input at the edge gets a clear 4xx in the OpenAI error shape: never a 500,
never a hang, never a silent pass, and the upstream never sees it."""

from __future__ import annotations

import http.client
import json
from collections.abc import Callable, Iterator
from urllib.parse import urlsplit

import pytest

from guardproxy import json_codec
from guardproxy.demo import DemoRecorder
from tests.conftest import RunningProxy

LIMIT = 64 * 1024


def _send(url: str, path: str, body: bytes | Iterator[bytes], headers: dict[str, str] | None = None,
          method: str = "POST") -> tuple[int, dict[str, object]]:
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=20)
    chunked = not isinstance(body, bytes)
    connection.request(method, path, body=body, headers={"content-type": "application/json", **(headers or {})},
                       encode_chunked=chunked)
    response = connection.getresponse()
    answer = json.loads(response.read())
    connection.close()
    return response.status, answer


@pytest.fixture
def proxy(start_proxy: Callable[..., RunningProxy]) -> RunningProxy:
    return start_proxy(max_body_bytes=LIMIT, policy="""
version: 1
name: bad
passthrough: ["/v1/files"]
chains:
  default:
    input: [{guard: keywords, action: block, terms: [zanzibar]}]
""")


@pytest.mark.parametrize(("body", "reason"), [
    (b"[" * 60_000, "nested"),
    (b'{"model": "m", "messages": [{"role": "user", "content": "x", "n": ' + b"[" * 2000 + b"]" * 2000 + b"}]}",
     "nested"),
    (b'{"model": "m", "messages": [{"role": "user", "content": "\\ud800 zanzibar"}]}', "surrogate"),
    (b'{"model": "m", "messages": [{"role": "user", "content": "caf\xe9 zanzibar"}]}', "UTF-8"),
    (b'{"model": "m", "messages": [{"role": "user", "content": "x"}]', "JSON"),
])
def test_malformed_bodies_get_a_400(body: bytes, reason: str, proxy: RunningProxy, recorder: DemoRecorder) -> None:
    status, answer = _send(proxy.url, "/v1/chat/completions", body)
    assert status == 400, answer
    error = answer["error"]
    assert isinstance(error, dict) and error["code"] == "invalid_json" and reason in error["message"]
    assert recorder.requests == []


def _chunks(total: int, size: int = 8192) -> Iterator[bytes]:
    yield b'{"model": "m", "messages": [{"role": "user", "content": "'
    sent = 0
    while sent < total:
        yield b"a" * size
        sent += size
    yield b'"}]}'


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/files"])
def test_a_chunked_upload_past_the_limit_gets_a_413(path: str, proxy: RunningProxy, recorder: DemoRecorder) -> None:
    status, answer = _send(proxy.url, path, _chunks(4 * LIMIT))
    assert status == 413 and answer["error"]["code"] == "request_too_large"  # type: ignore[index]
    assert all(len(r.body) <= LIMIT for r in recorder.requests)  # nothing past the limit went upstream


def test_a_chunked_upload_within_the_limit_is_guarded(proxy: RunningProxy, recorder: DemoRecorder) -> None:
    status, _ = _send(proxy.url, "/v1/chat/completions", _chunks(LIMIT // 2))
    assert status == 200 and len(recorder.requests) == 1


def test_the_codec_keeps_what_it_cannot_parse_fast() -> None:
    assert json_codec.loads(b'{"n": 123456789012345678901234567890}') == {"n": 123456789012345678901234567890}
    assert json_codec.loads(b'{"s": "\\ud83d\\ude00"}') == {"s": "😀"}  # a valid surrogate pair
    with pytest.raises(ValueError, match="nested"):
        json_codec.loads(b"[" * 2000 + b"]" * 2000)
