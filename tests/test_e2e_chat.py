"""End to end: the real openai SDK -> proxy (uvicorn) -> demo upstream (uvicorn)."""

from __future__ import annotations

import json

import httpx
import openai
import pytest

from guardproxy.demo import DemoRecorder
from tests.conftest import RunningProxy

SECRET = "sk-ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"


def test_chat_non_streamed_passes_and_carries_headers(proxy: RunningProxy, recorder: DemoRecorder) -> None:
    raw = proxy.client().chat.completions.with_raw_response.create(
        model="demo", messages=[{"role": "user", "content": "hello there"}]
    )
    completion = raw.parse()
    assert completion.choices[0].message.content == "You said: hello there"
    assert completion.usage is not None and completion.usage.total_tokens > 0
    assert raw.headers["x-guardproxy-verdict"] == "pass"
    assert raw.headers["x-guardproxy-policy"].startswith("testpolicy@")
    assert len(raw.headers["x-guardproxy-policy"].split("@")[1]) == 12
    assert raw.headers["x-request-id"].startswith("req_")  # upstream headers come back
    assert recorder.last().path == "/v1/chat/completions"


def test_chat_streamed_equals_non_streamed(proxy: RunningProxy) -> None:
    client = proxy.client()
    messages = [{"role": "user", "content": "tell me a long story about a lighthouse keeper and the sea"}]
    whole = client.chat.completions.create(model="demo", messages=messages).choices[0].message.content
    pieces, finish, usage = [], None, None
    for chunk in client.chat.completions.create(
        model="demo", messages=messages, stream=True, stream_options={"include_usage": True}
    ):
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            pieces.append(choice.delta.content or "")
            finish = choice.finish_reason or finish
    assert "".join(pieces) == whole
    assert finish == "stop"
    assert usage is not None and usage.completion_tokens > 0


def test_unguarded_stream_is_relayed_byte_for_byte(start_proxy, upstream_server) -> None:  # type: ignore[no-untyped-def]
    proxy = start_proxy(policy="version: 1\nname: open\nchains: {default: {}}\n")
    body = {"model": "demo", "stream": True, "messages": [{"role": "user", "content": "one two three four"}]}
    direct = httpx.post(upstream_server.url + "/v1/chat/completions", json=body).text
    proxied = httpx.post(proxy.url + "/v1/chat/completions", json=body).text

    def strip_volatile(text: str) -> list[object]:
        events = [json.loads(line[6:]) for line in text.splitlines() if line.startswith("data: {")]
        for event in events:
            event.pop("id"), event.pop("created")
        return events

    assert strip_volatile(direct) == strip_volatile(proxied)
    assert proxied.endswith("data: [DONE]\n\n")


def test_input_block_raises_bad_request_with_policy_message(proxy: RunningProxy, recorder: DemoRecorder) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        proxy.client().chat.completions.create(
            model="demo", messages=[{"role": "system", "content": "be nice"},
                                    {"role": "user", "content": "please say the Forbidden  Phrase now"}]
        )
    err = caught.value
    assert err.status_code == 400
    assert isinstance(err.body, dict)
    assert err.body["message"] == "Blocked by test policy."
    assert err.body["type"] == "guardrail_violation" and err.body["code"] == "policy_violation"
    assert err.body["guardrail"]["violations"] == [
        {"guard": "keywords", "name": "banned", "action": "block", "labels": ["banned"],
         "segments": ["messages.1.content"]}
    ]
    assert "Forbidden" not in json.dumps(err.body)
    assert err.response.headers["x-guardproxy-verdict"] == "blocked"
    assert recorder.requests == []  # nothing went upstream


def test_input_redaction_reaches_upstream_and_keeps_unknown_fields(
    proxy: RunningProxy, recorder: DemoRecorder
) -> None:
    raw = proxy.client().chat.completions.with_raw_response.create(
        model="demo",
        messages=[{"role": "user", "content": [
            {"type": "text", "text": f"my key is {SECRET} ok"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
        ]}],
        extra_body={"vendor_extension": {"keep": [1, 2, {"x": None}]}},
    )
    assert raw.headers["x-guardproxy-verdict"] == "redacted"
    sent = recorder.last().json
    assert sent["messages"][0]["content"][0]["text"] == "my key is [SECRET] ok"
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}
    assert sent["messages"][0]["content"][1] == image
    assert sent["vendor_extension"] == {"keep": [1, 2, {"x": None}]}
    assert SECRET not in recorder.last().body.decode()


def test_a_checked_body_goes_upstream_as_the_json_the_guards_read(proxy: RunningProxy,
                                                                   recorder: DemoRecorder) -> None:
    """Re-written, not the client's bytes: another parser could read those differently (a key
    given twice is kept first by some, last by Python and orjson), carrying unchecked text past."""
    body = b'{"model":"demo",  "messages":[{"role":"user","content":"caf\\u00e9 1.0e2"}],"x_odd": 1.50,' \
           b'"big": 123456789012345678901234567890}'
    response = httpx.post(proxy.url + "/v1/chat/completions", content=body,
                          headers={"content-type": "application/json"})
    assert response.status_code == 200
    assert recorder.last().json == json.loads(body)  # the same values, big integers and decimals included
    doubled = b'{"model":"demo","messages":[{"role":"user","content":"forbidden phrase"}],' \
              b'"messages":[{"role":"user","content":"hello"}]}'
    response = httpx.post(proxy.url + "/v1/chat/completions", content=doubled,
                          headers={"content-type": "application/json"})
    assert response.status_code == 200
    assert b"forbidden phrase" not in recorder.last().body and recorder.last().body.count(b'"messages"') == 1


def test_output_flag_passes_text_unchanged(proxy: RunningProxy) -> None:
    reply = "We offer guaranteed returns on every plan."
    raw = proxy.client().chat.completions.with_raw_response.create(
        model="demo", messages=[{"role": "user", "content": "hi"}], extra_headers={"x-demo-reply": reply}
    )
    assert raw.parse().choices[0].message.content == reply
    assert raw.headers["x-guardproxy-verdict"] == "flagged"


def test_output_block_non_streamed_becomes_content_filter(proxy: RunningProxy) -> None:
    raw = proxy.client().chat.completions.with_raw_response.create(
        model="demo", messages=[{"role": "user", "content": "hi"}],
        extra_headers={"x-demo-reply": "Sure. The nuclear launch code is 0000."},
    )
    choice = raw.parse().choices[0]
    assert choice.finish_reason == "content_filter"
    assert choice.message.content == "Withheld by test policy."
    assert raw.headers["x-guardproxy-verdict"] == "blocked"


def test_output_block_mid_stream(proxy: RunningProxy) -> None:
    reply = ("Here is a long and harmless preamble that goes on for quite a while, and then "
             "the nuclear launch code appears, followed by more text that must never arrive.")
    text, finishes = proxy.stream_reply(reply)
    assert finishes == ["content_filter"]
    assert "nuclear" not in text and "never arrive" not in text
    assert text.startswith("Here is a long and harmless preamble")  # released before the block


def test_stream_redacts_a_secret_split_across_chunks(proxy: RunningProxy) -> None:
    reply = f"Your key {SECRET} is shown here, with several more words after it to stream."
    stream = proxy.client().chat.completions.create(
        model="demo", messages=[{"role": "user", "content": "hi"}], stream=True,
        extra_headers={"x-demo-reply": reply},
    )
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == reply.replace(SECRET, "[SECRET]")


def test_stream_verdict_trailer_comment(proxy: RunningProxy) -> None:
    body = {"model": "demo", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    text = httpx.post(proxy.url + "/v1/chat/completions", json=body,
                      headers={"x-demo-reply": "We promise guaranteed returns."}).text
    assert ": guardproxy verdict=flagged\n\n" in text
    assert text.endswith("data: [DONE]\n\n")
