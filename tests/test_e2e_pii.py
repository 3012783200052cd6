"""End to end with the openai SDK: PII redacted on the way up, restored on the way back."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import openai
import pytest

from guardproxy.demo import DemoRecorder
from tests.conftest import RunningProxy

PII_POLICY = """
version: 1
name: pii
chains:
  default:
    input:
      - {guard: pii, action: redact, restore: true}
    output:
      - {guard: pii, action: redact, style: type, entities: [EMAIL_ADDRESS, CREDIT_CARD, PHONE_NUMBER]}
"""
MESSAGE = "Hi, I am Maria Gonzalez, my email is maria.gonzalez@example.org and my card is 4111 1111 1111 1111."
RAW_VALUES = ["Maria Gonzalez", "maria.gonzalez@example.org", "4111 1111 1111 1111"]


@pytest.fixture
def pii_proxy(start_proxy: Callable[..., RunningProxy]) -> RunningProxy:
    return start_proxy(policy=PII_POLICY)


def test_request_reaches_upstream_redacted_and_answer_is_restored(
    pii_proxy: RunningProxy, recorder: DemoRecorder
) -> None:
    raw = pii_proxy.client().chat.completions.with_raw_response.create(
        model="demo", messages=[{"role": "user", "content": MESSAGE}])
    sent = recorder.last()
    assert sent.json["messages"][0]["content"] == (
        "Hi, I am <PERSON_1>, my email is <EMAIL_ADDRESS_1> and my card is <CREDIT_CARD_1>.")
    for value in RAW_VALUES:
        assert value not in sent.body.decode()
    assert raw.parse().choices[0].message.content == "You said: " + MESSAGE
    assert raw.headers["x-guardproxy-verdict"] == "redacted"


def test_streamed_answer_is_restored(pii_proxy: RunningProxy) -> None:
    stream = pii_proxy.client().chat.completions.create(
        model="demo", messages=[{"role": "user", "content": MESSAGE}], stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == "You said: " + MESSAGE


def test_streamed_answer_with_an_email_is_redacted(pii_proxy: RunningProxy) -> None:
    reply = "You can reach our support desk at help.desk@support.example.com any time, day or night."
    stream = pii_proxy.client().chat.completions.create(
        model="demo", messages=[{"role": "user", "content": "how do I get help?"}], stream=True,
        extra_headers={"x-demo-reply": reply})
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == "You can reach our support desk at <EMAIL_ADDRESS> any time, day or night."


def test_tool_call_arguments_are_restored(pii_proxy: RunningProxy, recorder: DemoRecorder) -> None:
    tools = [{"type": "function", "function": {"name": "send_mail", "parameters": {
        "type": "object", "properties": {"body": {"type": "string"}}}}}]
    client = pii_proxy.client()
    message = client.chat.completions.create(
        model="demo", messages=[{"role": "user", "content": MESSAGE}], tools=tools  # type: ignore[arg-type]
    ).choices[0].message
    assert "<PERSON_1>" in recorder.last().body.decode()
    assert json.loads(message.tool_calls[0].function.arguments) == {"body": MESSAGE}  # type: ignore[index]
    with client.chat.completions.stream(model="demo", messages=[{"role": "user", "content": MESSAGE}],
                                        tools=tools) as stream:  # type: ignore[arg-type]
        final = stream.get_final_completion()
    assert json.loads(final.choices[0].message.tool_calls[0].function.arguments) == {"body": MESSAGE}  # type: ignore[index]


FIRST = ["Olivia", "Liam", "Emma", "Noah", "Ava", "Lucas", "Sophia", "Mateo", "Isabella", "Ethan"]
LAST = ["Martin", "Keller", "Novak", "Rossi", "Dubois"]


def test_fifty_concurrent_requests_each_get_their_own_values(
    pii_proxy: RunningProxy, recorder: DemoRecorder
) -> None:
    people = [(f, ln) for ln in LAST for f in FIRST]
    client = openai.AsyncOpenAI(base_url=pii_proxy.url + "/v1", api_key="sk-x", max_retries=0, timeout=60)

    async def ask(first: str, last: str, stream: bool) -> str:
        content = f"My name is {first} {last} and my email is {first.lower()}.{last.lower()}@example.com."
        if stream:
            chunks = await client.chat.completions.create(
                model="demo", messages=[{"role": "user", "content": content}], stream=True)
            return "".join([c.choices[0].delta.content or "" async for c in chunks if c.choices])
        reply = await client.chat.completions.create(model="demo", messages=[{"role": "user", "content": content}])
        return reply.choices[0].message.content or ""

    async def ask_all() -> list[str]:
        try:
            return await asyncio.gather(*(ask(f, ln, i % 2 == 0) for i, (f, ln) in enumerate(people)))
        finally:
            await client.close()

    answers = asyncio.run(ask_all())
    assert len(people) == 50
    for (first, last), answer in zip(people, answers, strict=True):
        email = f"{first.lower()}.{last.lower()}@example.com"
        assert answer == f"You said: My name is {first} {last} and my email is {email}."
        others = [f"{f.lower()}.{ln.lower()}@example.com" for f, ln in people if (f, ln) != (first, last)]
        assert not any(other in answer for other in others)
    upstream_bodies = " ".join(r.body.decode() for r in recorder.requests)
    assert "@example.com" not in upstream_bodies  # every email left redacted


def test_a_rewritten_body_keeps_every_other_field_exactly(pii_proxy: RunningProxy, recorder: DemoRecorder) -> None:
    pii_proxy.client().chat.completions.create(
        model="demo", messages=[{"role": "user", "content": MESSAGE}],
        extra_body={"seed": 123456789012345678901234567890, "metadata": {"note": "héllo 🙂"}})
    sent = recorder.last()
    assert "<PERSON_1>" in sent.json["messages"][0]["content"]
    assert sent.json["seed"] == 123456789012345678901234567890  # not a float: no digit lost
    assert sent.json["metadata"] == {"note": "héllo 🙂"}
