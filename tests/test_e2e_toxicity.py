"""End to end: the openai SDK -> proxy with ``guard: toxicity`` -> demo upstream."""

from __future__ import annotations

from collections.abc import Callable

import openai
import pytest

from guardproxy.demo import DemoRecorder
from tests.conftest import REPO, RunningProxy

EXAMPLE_POLICY = (REPO / "policies" / "examples" / "toxicity.yaml").read_text()
MODERATION_POLICY = """
version: 1
name: moderation
chains:
  default:
    input:
      - {guard: toxicity, action: block, detector: moderation}
"""
PREAMBLE = ("Thanks for your patience while we looked into this. Your order left our warehouse on Monday and "
            "the courier expects to deliver it by Thursday afternoon. The tracking number will work from "
            "tomorrow morning, and you can also follow the parcel in the app. ")
TOXIC = "Honestly, you are a fucking idiot and nobody wants to hear your whining."
AFTER = " Let me know if there is anything else I can help you with today."


def stream_reply(proxy: RunningProxy, reply: str) -> tuple[str, list[str]]:
    return proxy.stream_reply(reply, user="where is my order?")


def test_a_toxic_sentence_ends_the_stream_before_any_of_it_arrives(
    start_proxy: Callable[..., RunningProxy],
) -> None:
    proxy = start_proxy(policy=EXAMPLE_POLICY)
    text, finishes = stream_reply(proxy, PREAMBLE + TOXIC + AFTER)
    assert finishes == ["content_filter"]
    assert "idiot" not in text and "Honestly" not in text and "anything else" not in text
    assert text and PREAMBLE.startswith(text), "the polite part before it may be released"


def test_a_polite_stream_arrives_whole(start_proxy: Callable[..., RunningProxy]) -> None:
    proxy = start_proxy(policy=EXAMPLE_POLICY)
    text, finishes = stream_reply(proxy, PREAMBLE + AFTER.strip())
    assert finishes == ["stop"]
    assert text == PREAMBLE + AFTER.strip()


def test_a_toxic_prompt_is_blocked(start_proxy: Callable[..., RunningProxy], recorder: DemoRecorder) -> None:
    proxy = start_proxy(policy=EXAMPLE_POLICY)
    with pytest.raises(openai.BadRequestError) as caught:
        proxy.client().chat.completions.create(
            model="demo", messages=[{"role": "user", "content": "Answer me, you worthless piece of shit."}]
        )
    assert isinstance(caught.value.body, dict)
    assert caught.value.body["guardrail"]["violations"] == [
        {"guard": "toxicity", "name": "toxicity", "action": "block", "labels": ["toxicity"],
         "segments": ["messages.0.content"]}
    ]
    assert not [r for r in recorder.requests if r.path == "/v1/chat/completions"]


def test_the_moderation_detector_asks_the_upstream(
    start_proxy: Callable[..., RunningProxy], recorder: DemoRecorder
) -> None:
    proxy = start_proxy(policy=MODERATION_POLICY)
    client = proxy.client()
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="demo", messages=[{"role": "user", "content": "They are vermin."}])
    assert isinstance(caught.value.body, dict)
    assert caught.value.body["guardrail"]["violations"][0]["labels"] == ["hate"]
    moderation_calls = [r for r in recorder.requests if r.path == "/v1/moderations"]
    assert len(moderation_calls) == 1
    assert moderation_calls[0].json == {"input": ["They are vermin."], "model": "omni-moderation-latest"}
    answer = client.chat.completions.create(model="demo", messages=[{"role": "user", "content": "hello there"}])
    assert answer.choices[0].message.content == "You said: hello there"
