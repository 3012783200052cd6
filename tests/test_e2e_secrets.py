"""End to end with the openai SDK, the proxy under uvicorn on loopback and the scripted upstream:
a secret in the user's message reaches the upstream as ``[SECRET:<kind>]``, and a secret the model
writes reaches the client redacted, streamed (in 3-character chunks) or not."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from tests.conftest import RunningProxy
from tests.scripted_upstream import Answer, ScriptedUpstream, chat_answer, chat_chunk, split

POLICY = """
version: 1
name: secrets
chains:
  default:
    input:
      - {name: secrets, guard: secrets, action: redact}
    output:
      - {name: secrets, guard: secrets, action: redact}
"""
AWS_KEY = "AKIAQYLPMN5HHHFPZAM2"
GITHUB = "ghp_Zq8mR2vX7pL0nB4tK9wE1cY6uH3sF5gA8dJ2"
JWT = ("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiI4MzExOTAyNjAiLCJzY29wZSI6InJlcG86MCB3cml0ZToxIGFkbWluOjIgcmV"
       "wbzozIHJlcG86NCBhZG1pbjo1IHJlcG86NiByZXBvOjcgcmVhZDo4IHdyaXRlOjkgYmlsbGluZzoxMCBhZG1pbjoxMSJ9."
       "8q_ctWkGz3krqOEfwXlXQ-ZPJSgKWkGBYw3zhS9ULPbSDB1LKU4gRpPX_W7hjJm7TZMZPSfp8r3Ngmqw3CIOWw")
PEM_BODY = "\n".join("MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7" + f"{i:02d}a1B2c3D4e5F" for i in range(25))
PEM = f"-----BEGIN RSA PRIVATE KEY-----\n{PEM_BODY}\n-----END RSA PRIVATE KEY-----"
ANSWER = f"Set it like this:\nexport GITHUB_TOKEN={GITHUB}\nand call with Bearer {JWT} then\n{PEM}\nDone."
REDACTED = ("Set it like this:\nexport GITHUB_TOKEN=[SECRET:github_pat]\nand call with Bearer [SECRET:jwt] then\n"
            "[SECRET:private_key]\nDone.")


@pytest.fixture
def proxied(start_scripted_proxy: Callable[[str], tuple[RunningProxy, ScriptedUpstream]]
            ) -> tuple[RunningProxy, ScriptedUpstream]:
    return start_scripted_proxy(POLICY)


def test_a_secret_in_the_request_reaches_the_upstream_redacted(proxied: tuple[RunningProxy, ScriptedUpstream]) -> None:
    proxy, upstream = proxied
    upstream.script(Answer(json=chat_answer({"content": "ok"})))
    raw = proxy.client().chat.completions.with_raw_response.create(
        model="m", messages=[{"role": "user", "content": f"why does {AWS_KEY} fail with password: Xk9#mQ2$vL7!pR4 ?"}])
    sent = json.loads(upstream.received[0].body)
    assert sent["messages"][0]["content"] == "why does [SECRET:aws_access_key] fail with password: [SECRET:password] ?"
    assert AWS_KEY.encode() not in upstream.bodies() and b"Xk9#mQ2" not in upstream.bodies()
    assert raw.headers["x-guardproxy-verdict"] == "redacted"
    assert raw.parse().choices[0].message.content == "ok"


def test_a_secret_the_model_writes_is_redacted(proxied: tuple[RunningProxy, ScriptedUpstream]) -> None:
    proxy, upstream = proxied
    upstream.script(Answer(json=chat_answer({"content": ANSWER})))
    reply = proxy.client().chat.completions.create(model="m", messages=[{"role": "user", "content": "how?"}])
    assert reply.choices[0].message.content == REDACTED


def test_a_streamed_answer_never_sends_any_part_of_a_secret(proxied: tuple[RunningProxy, ScriptedUpstream]) -> None:
    proxy, upstream = proxied
    upstream.script(Answer(events=[chat_chunk(role="assistant", content=""),
                                   *(chat_chunk(content=piece) for piece in split(ANSWER, 3)),
                                   chat_chunk(finish="stop"), "[DONE]"]))
    stream = proxy.client().chat.completions.create(model="m", messages=[{"role": "user", "content": "how?"}],
                                                    stream=True)
    pieces = [c.choices[0].delta.content or "" for c in stream if c.choices]
    text = "".join(pieces)
    assert text == REDACTED
    for secret in (GITHUB, JWT, PEM_BODY):
        assert not any(secret[i:i + 8] in text for i in range(len(secret) - 8))
