"""Retrieved context reaches output guards; annotate; streams that guards cannot change are not delayed."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from typing import ClassVar

import httpx
import openai
import pytest

from guardproxy.demo import DemoRecorder
from guardproxy.guards import REGISTRY, Finding, GuardConfig, GuardContext, Segment
from tests.conftest import RunningProxy

SEEN: list[GuardContext] = []


class EchoContextGuard:
    """Records the context it is given; fires on sentences that mention 'moon'."""

    Config: ClassVar[type[GuardConfig]] = GuardConfig
    kind: ClassVar[str] = "inline"

    def __init__(self, config: GuardConfig) -> None:
        del config

    def warm(self) -> None:
        return None

    def scan(self, segments: Sequence[Segment], context: GuardContext) -> list[Finding]:
        SEEN.append(context)
        return [Finding("moon", 0.9, i, s.text.find("moon"), s.text.find("moon") + 4)
                for i, s in enumerate(segments) if "moon" in s.text]


@pytest.fixture(autouse=True)
def echo_guard(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setitem(REGISTRY, "echo_context", EchoContextGuard)  # type: ignore[arg-type]
    SEEN.clear()
    yield


POLICY = """
version: 1
name: ctx
chains:
  default:
    input:
      - {guard: keywords, action: redact, terms: [Alice], label: NAME}
    output:
      - {guard: echo_context, action: annotate, note: "Some of this is not in your sources."}
"""


def test_extension_context_is_stripped_and_reaches_output_guards(
    start_proxy: Callable[..., RunningProxy], recorder: DemoRecorder
) -> None:
    proxy = start_proxy(policy=POLICY)
    raw = proxy.client().chat.completions.with_raw_response.create(
        model="demo", messages=[{"role": "user", "content": "Alice asks about the moon"}],
        extra_body={"guardproxy": {"context": ["The moon orbits the earth.", "Doc two."]}},
    )
    assert "guardproxy" not in recorder.last().json  # the upstream never sees the extension
    output_contexts = [c for c in SEEN if c.stage == "output"]
    assert output_contexts[0].documents == ("The moon orbits the earth.", "Doc two.")
    assert [s.text for s in output_contexts[0].prompt] == ["[NAME] asks about the moon"]  # as the model saw it
    content = raw.parse().choices[0].message.content
    assert content == "You said: [NAME] asks about the moon\n\nSome of this is not in your sources."
    assert raw.headers["x-guardproxy-verdict"] == "redacted"


def test_bad_extension_is_a_400(start_proxy: Callable[..., RunningProxy], recorder: DemoRecorder) -> None:
    proxy = start_proxy(policy=POLICY)
    for extension in ({"context": "not a list"}, {"context": [1]}, {"ctx": []}, "x"):
        with pytest.raises(openai.BadRequestError) as caught:
            proxy.client().chat.completions.create(model="demo", messages=[{"role": "user", "content": "hi"}],
                                                   extra_body={"guardproxy": extension})
        assert caught.value.body["code"] == "invalid_extension"  # type: ignore[index]
    assert recorder.requests == []


def test_streamed_annotation_and_no_delay(start_proxy: Callable[..., RunningProxy]) -> None:
    proxy = start_proxy(policy=POLICY)
    reply = "First a harmless sentence. Then one about the moon. And a last one to finish."
    text, finishes = proxy.stream_reply(reply)
    assert text == reply + "\n\nSome of this is not in your sources."
    assert finishes == ["stop"]

    body = {"model": "demo", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    started = time.perf_counter()
    with httpx.stream("POST", proxy.url + "/v1/chat/completions", json=body,
                      headers={"x-demo-reply": "one two three four five six seven eight nine ten",
                               "x-demo-chunk-delay-ms": "150"}) as response:
        first_text_at = None
        for line in response.iter_lines():
            if '"content":"one' in line or '"content":"one ' in line:
                first_text_at = time.perf_counter() - started
                break
    # The chain can only annotate, so nothing is held back: the first words arrive with the first chunks,
    # long before the ~1.5 s the whole answer takes.
    assert first_text_at is not None and first_text_at < 0.9
