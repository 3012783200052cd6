"""End to end: upstream errors, limits, headers, other endpoints, disconnects."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable

import httpx
import openai
import pytest

from guardproxy.demo import DemoRecorder
from tests.conftest import RunningProxy, wait_until

SECRET = "sk-ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
HELLO = [{"role": "user", "content": "hello"}]


def test_upstream_429_passes_through_with_retry_after(proxy: RunningProxy, upstream_server) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(openai.RateLimitError) as caught:
        proxy.client().chat.completions.create(model="demo", messages=HELLO, extra_headers={"x-demo-status": "429"})
    response = caught.value.response
    assert response.status_code == 429
    assert response.headers["retry-after"] == "7"
    direct = httpx.post(upstream_server.url + "/v1/chat/completions", json={"model": "demo", "messages": HELLO},
                        headers={"x-demo-status": "429"})
    assert json.loads(response.content) == direct.json()  # body unchanged


def test_upstream_500_passes_through(proxy: RunningProxy) -> None:
    with pytest.raises(openai.InternalServerError) as caught:
        proxy.client().chat.completions.create(model="demo", messages=HELLO, extra_headers={"x-demo-status": "500"})
    assert caught.value.status_code == 500
    assert caught.value.body["type"] == "server_error"  # type: ignore[index]


def test_upstream_down_gives_502(start_proxy: Callable[..., RunningProxy]) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    proxy = start_proxy(upstream=f"http://127.0.0.1:{closed_port}/v1")
    with pytest.raises(openai.APIStatusError) as caught:
        proxy.client().chat.completions.create(model="demo", messages=HELLO)
    assert caught.value.status_code == 502
    assert caught.value.body == {"message": "The upstream API could not be reached.", "type": "upstream_error",
                                 "param": None, "code": "upstream_unreachable"}


def test_upstream_timeout_gives_504(start_proxy: Callable[..., RunningProxy]) -> None:
    proxy = start_proxy(upstream_timeout=0.3)
    with pytest.raises(openai.APIStatusError) as caught:
        proxy.client().chat.completions.create(model="demo", messages=HELLO,
                                               extra_headers={"x-demo-delay-ms": "3000"})
    assert caught.value.status_code == 504
    assert caught.value.body["code"] == "upstream_timeout"  # type: ignore[index]


def test_malformed_json_gives_400(proxy: RunningProxy, recorder: DemoRecorder) -> None:
    for body in (b"{not json", b"[1, 2]", b'{"model": "demo"}', b'{"model":"demo","messages":"hi"}'):
        response = httpx.post(proxy.url + "/v1/chat/completions", content=body,
                              headers={"content-type": "application/json"})
        assert response.status_code == 400, body
        error = response.json()["error"]
        assert set(error) == {"message", "type", "param", "code"}
        assert error["type"] == "invalid_request_error"
    assert recorder.requests == []


def test_oversized_body_gives_413(start_proxy: Callable[..., RunningProxy], recorder: DemoRecorder) -> None:
    proxy = start_proxy(max_body_bytes=1000)
    big = {"model": "demo", "messages": [{"role": "user", "content": "x" * 2000}]}
    response = httpx.post(proxy.url + "/v1/chat/completions", json=big)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "request_too_large"

    def chunks():  # type: ignore[no-untyped-def]  # no content-length: the limit is counted as it streams
        yield json.dumps(big).encode()

    response = httpx.post(proxy.url + "/v1/chat/completions", content=chunks())
    assert response.status_code == 413
    assert recorder.requests == []


def test_tool_calls_non_streamed_and_streamed(proxy: RunningProxy) -> None:
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {
        "type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]}}}]
    client = proxy.client()
    message = client.chat.completions.create(
        model="demo", messages=[{"role": "user", "content": f"find {SECRET}"}], tools=tools  # type: ignore[arg-type]
    ).choices[0].message
    assert message.tool_calls and message.tool_calls[0].function.name == "lookup"
    assert json.loads(message.tool_calls[0].function.arguments) == {"query": "find [SECRET]"}

    with client.chat.completions.stream(model="demo", messages=[{"role": "user", "content": "weather"}],
                                        tools=tools) as stream:  # type: ignore[arg-type]
        final = stream.get_final_completion()
    call = final.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert call.function.name == "lookup" and json.loads(call.function.arguments) == {"query": "weather"}
    assert final.choices[0].finish_reason == "tool_calls"


def test_tool_call_arguments_are_redacted_as_json(proxy: RunningProxy, recorder: DemoRecorder) -> None:
    """A secret inside the arguments the model returns is redacted and the JSON stays valid."""
    tools = [{"type": "function", "function": {"name": "save", "parameters": {
        "type": "object", "properties": {"note": {"type": "string"}}}}}]
    client = proxy.client()
    # The demo copies the last user message into the arguments; the input stage redacts it first,
    # so send the secret from a tool result (scanned too) and check the request that went upstream.
    client.chat.completions.create(model="demo", tools=tools, messages=[  # type: ignore[arg-type]
        {"role": "user", "content": "save it"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "save", "arguments": json.dumps(
                {"note": f'quote " and {SECRET}'})}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": f"stored {SECRET}"},
    ])
    sent = recorder.last().json["messages"]
    assert json.loads(sent[1]["tool_calls"][0]["function"]["arguments"]) == {"note": 'quote " and [SECRET]'}
    assert sent[2]["content"] == "stored [SECRET]"


def test_embeddings_and_models(proxy: RunningProxy, recorder: DemoRecorder) -> None:
    client = proxy.client()
    result = client.embeddings.create(model="demo", input=["alpha", f"beta {SECRET}"])
    assert len(result.data) == 2 and len(result.data[0].embedding) == 16
    assert recorder.last().json["input"] == ["alpha", "beta [SECRET]"]
    models = [m.id for m in client.models.list()]
    assert "demo" in models
    with pytest.raises(openai.BadRequestError):
        client.embeddings.create(model="demo", input="the forbidden phrase")


def test_completions_endpoint(proxy: RunningProxy, recorder: DemoRecorder) -> None:
    client = proxy.client()
    completion = client.completions.create(model="demo", prompt=f"key {SECRET}")
    assert recorder.last().json["prompt"] == "key [SECRET]"
    assert completion.choices[0].text == " You said: key [SECRET]"
    text = "".join(c.choices[0].text for c in client.completions.create(
        model="demo", prompt="x", stream=True,
        extra_headers={"x-demo-reply": "a harmless opening, then the nuclear launch code and more text"})
        if c.choices)
    assert "nuclear" not in text


def test_authorization_forwarded_or_replaced(
    start_proxy: Callable[..., RunningProxy], recorder: DemoRecorder
) -> None:
    plain = start_proxy()
    plain.client(api_key="sk-from-client").models.list()
    assert recorder.last().headers["authorization"] == "Bearer sk-from-client"

    keyed = start_proxy(upstream_key_env="UPSTREAM_KEY", environ={"UPSTREAM_KEY": "sk-operator"})
    keyed.client(api_key="sk-from-client").chat.completions.create(
        model="demo", messages=HELLO, extra_headers={"x-demo-require-key": "sk-operator"})
    assert recorder.last().headers["authorization"] == "Bearer sk-operator"


def test_header_rules(proxy: RunningProxy, recorder: DemoRecorder) -> None:
    response = httpx.post(proxy.url + "/v1/chat/completions", json={"model": "demo", "messages": HELLO}, headers={
        "x-custom-trace": "abc", "x-guardproxy-verdict": "spoofed", "connection": "keep-alive, x-drop-me",
        "x-drop-me": "1", "te": "trailers"})
    assert response.status_code == 200
    sent = recorder.last().headers
    assert sent["x-custom-trace"] == "abc"
    for name in ("x-guardproxy-verdict", "x-drop-me", "te"):
        assert name not in sent
    assert sent["host"].startswith("127.0.0.1")  # the upstream's own host, not the proxy's
    assert response.headers["x-guardproxy-verdict"] == "pass"


def test_unknown_paths_are_read_relayed_written_refused_or_opted_in(
    start_proxy: Callable[..., RunningProxy], recorder: DemoRecorder
) -> None:
    closed = start_proxy()
    response = httpx.get(closed.url + "/v1/files?purpose=batch")
    assert response.status_code == 404  # the demo upstream's own answer: a GET is relayed
    assert recorder.last().path == "/v1/files"
    recorder.clear()
    response = httpx.post(closed.url + "/v1/files", json={"purpose": "batch"})
    assert response.status_code == 404 and "'passthrough'" in response.json()["error"]["message"]
    assert recorder.requests == []  # a write to a path no dialect guards never leaves by default
    assert httpx.get(closed.url + "/v1/models").status_code == 200
    opened = start_proxy(policy="version: 1\nname: open\nunknown_paths: pass\nchains: {default: {}}\n")
    httpx.post(opened.url + "/v1/files", json={"purpose": "batch"})
    assert recorder.last().path == "/v1/files"


def test_client_disconnect_cancels_upstream_stream(proxy: RunningProxy, recorder: DemoRecorder) -> None:
    body = {"model": "demo", "stream": True, "messages": [{"role": "user", "content": "a b c d e f g h i j k l"}]}
    with httpx.stream("POST", proxy.url + "/v1/chat/completions", json=body,
                      headers={"x-demo-chunk-delay-ms": "200"}) as response:
        next(response.iter_bytes())
    assert wait_until(lambda: recorder.cancelled_streams == 1, timeout=5)
    assert recorder.completed_streams == 0


def test_health_and_readiness(proxy: RunningProxy) -> None:
    assert httpx.get(proxy.url + "/healthz").json() == {"status": "alive"}
    ready = httpx.get(proxy.url + "/readyz").json()
    assert ready["status"] == "ready" and ready["policies"] == ["testpolicy"]


def test_unknown_route_outside_v1_is_openai_shaped(proxy: RunningProxy) -> None:
    response = httpx.get(proxy.url + "/nope")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "unknown_url"
