"""End to end with the openai SDK: guard: topics blocks a banned topic on input and lets others through."""

from __future__ import annotations

from collections.abc import Callable

import openai
import pytest

from guardproxy.demo import DemoRecorder
from tests.conftest import RunningProxy

POLICY = """
version: 1
name: topicspolicy
messages: {input_blocked: "Off topic."}
chains:
  default:
    input:
      - name: off_topic
        guard: topics
        action: block
        method: {method}
        {extra}
        topics:
          - name: travel
            description: "Travel: booking flights, hotels and rental cars, luggage, visas and trip ideas."
            examples: ["Book me a flight to Rome next Friday.", "Find a hotel near the airport for two nights."]
            keywords: [flight, hotel]
"""


@pytest.mark.parametrize(("method", "extra"), [("semantic", ""), ("keywords", ""), ("llm", "judge_model: demo-judge")])
def test_banned_topic_is_blocked_and_named(
    start_proxy: Callable[..., RunningProxy], recorder: DemoRecorder, method: str, extra: str
) -> None:
    proxy = start_proxy(policy=POLICY.replace("{method}", method).replace("{extra}", extra))
    client = proxy.client()
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model="demo", messages=[{"role": "user", "content": "Which hotels near the beach in Nice have rooms?"}])
    body = caught.value.body
    assert isinstance(body, dict) and body["message"] == "Off topic."
    assert body["guardrail"]["violations"] == [
        {"guard": "topics", "name": "off_topic", "action": "block", "labels": ["travel"],
         "segments": ["messages.0.content"]}]
    assert all(r.path != "/v1/chat/completions" or "judge" in str(r.json.get("model")) for r in recorder.requests)

    allowed = client.chat.completions.create(
        model="demo", messages=[{"role": "user", "content": "How do I sort a list of tuples in Python?"}])
    assert allowed.choices[0].message.content == "You said: How do I sort a list of tuples in Python?"
