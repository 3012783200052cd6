"""The demo upstream's error simulation, key check, delays and request recorder."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import httpx
import openai
import pytest

from guardproxy.demo import DemoRecorder
from tests.test_demo_upstream import base_url, client, demo_server, recorder, user

__all__ = ["base_url", "client", "demo_server", "recorder"]  # fixtures shared with test_demo_upstream


def test_simulated_429_is_a_rate_limit_error_with_retry_after(client: openai.OpenAI, recorder: DemoRecorder) -> None:
    with pytest.raises(openai.RateLimitError) as raised:
        client.chat.completions.create(model="demo", messages=user("x"), extra_headers={"x-demo-status": "429"})
    assert raised.value.response.headers["retry-after"] == "7"
    assert raised.value.response.headers["x-ratelimit-remaining-requests"] == "0"
    assert (raised.value.type, raised.value.code) == ("rate_limit_error", "rate_limit_exceeded")
    assert raised.value.request_id is not None and raised.value.request_id.startswith("req_")
    assert len(recorder.requests) == 1


def test_simulated_500_is_an_internal_server_error(client: openai.OpenAI) -> None:
    with pytest.raises(openai.InternalServerError) as raised:
        client.embeddings.create(model="demo", input="x", extra_headers={"x-demo-status": "500"})
    assert raised.value.status_code == 500
    assert raised.value.type == "server_error"


def test_invalid_requests_get_openai_error_bodies(client: openai.OpenAI, base_url: str) -> None:
    malformed = httpx.post(base_url + "/chat/completions", content=b"{not json")
    assert malformed.status_code == 400
    assert set(malformed.json()["error"]) == {"message", "type", "param", "code"}
    with pytest.raises(openai.BadRequestError) as no_messages:
        client.chat.completions.create(model="demo", messages=[], extra_body={"messages": None})
    assert no_messages.value.param == "messages"
    with pytest.raises(openai.BadRequestError) as no_model:
        client.completions.create(model="demo", prompt="x", extra_body={"model": None})
    assert no_model.value.param == "model"

    unknown = httpx.post(base_url + "/whatever", json={})
    assert unknown.status_code == 404
    assert unknown.json()["error"]["message"] == "Invalid URL (POST /v1/whatever)"
    assert unknown.json()["error"]["code"] == "unknown_url"
    assert httpx.get(base_url + "/chat/completions").status_code == 404


def test_required_key_is_enforced_only_when_asked(base_url: str) -> None:
    require = {"x-demo-require-key": "sk-real"}
    with openai.OpenAI(base_url=base_url, api_key="sk-wrong", max_retries=0) as wrong_key:
        with pytest.raises(openai.AuthenticationError) as raised:
            wrong_key.models.list(extra_headers=require)
        assert raised.value.code == "invalid_api_key"
        assert wrong_key.models.list().data
    with openai.OpenAI(base_url=base_url, api_key="sk-real", max_retries=0) as right_key:
        assert right_key.models.list(extra_headers=require).data


def test_delay_header_triggers_client_timeouts(client: openai.OpenAI) -> None:
    started = time.monotonic()
    with pytest.raises(openai.APITimeoutError):
        client.with_options(timeout=0.3).models.list(extra_headers={"x-demo-delay-ms": "1500"})
    assert time.monotonic() - started < 1.4


def test_recorder_keeps_every_request(client: openai.OpenAI, recorder: DemoRecorder) -> None:
    client.chat.completions.create(model="demo", messages=user("recorded"), extra_headers={"X-Custom-Thing": "yes"})
    client.models.list()
    first, second = recorder.requests
    assert (first.method, first.path) == ("POST", "/v1/chat/completions")
    assert first.headers["authorization"] == "Bearer x"
    assert first.headers["x-custom-thing"] == "yes"
    assert first.json["messages"][-1]["content"] == "recorded"
    assert json.loads(first.body) == first.json
    assert (second.method, second.path) == ("GET", "/v1/models")
    assert (second.body, second.json) == (b"", None)
    assert recorder.last() is second
    recorder.clear()
    assert recorder.requests == []
    with pytest.raises(LookupError):
        recorder.last()


def wait_for(condition: Callable[[], bool], timeout: float = 3.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_streams_are_counted_as_completed_or_cancelled(
    client: openai.OpenAI, base_url: str, recorder: DemoRecorder
) -> None:
    list(client.chat.completions.create(model="demo", messages=user("full"), stream=True))
    assert wait_for(lambda: recorder.completed_streams == 1)

    body = {"model": "demo", "messages": user("word " * 50), "stream": True}
    slow = {"x-demo-chunk-delay-ms": "50"}
    with (
        httpx.Client(timeout=5) as http,
        http.stream("POST", base_url + "/chat/completions", json=body, headers=slow) as response,
    ):
        first_event = next(response.iter_lines())
        assert first_event.startswith("data: {")
    assert wait_for(lambda: recorder.cancelled_streams == 1)
    assert recorder.completed_streams == 1
