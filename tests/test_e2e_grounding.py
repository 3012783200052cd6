"""End to end with the openai SDK: answers checked against retrieved context from
the extension field, tool messages and delimited blocks, streamed and not."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from guardproxy.demo import DemoRecorder
from tests.conftest import RunningProxy

POLICY = """
version: 1
name: rag
chains:
  default:
    output:
      - {guard: grounding, action: annotate, note: "[Some statements are not supported by the sources.]"}
"""
DOCS = ["The Eiffel Tower is a wrought-iron lattice tower in Paris, France. It was completed in 1889 "
        "and is 330 metres tall. It was designed by the company of engineer Gustave Eiffel."]
GROUNDED = "The Eiffel Tower is in Paris. It was completed in 1889."
INVENTED = "The Eiffel Tower is in Paris. It was completed in 1952 by Mayor Antoine Dupont with 9000 workers."
NOTE = "\n\n[Some statements are not supported by the sources.]"


@pytest.fixture
def rag(start_proxy: Callable[..., RunningProxy]) -> RunningProxy:
    return start_proxy(policy=POLICY)


def ask(proxy: RunningProxy, reply: str, stream: bool, **kwargs: object) -> tuple[str, str]:
    messages = kwargs.pop("messages", [{"role": "user", "content": "Tell me about the Eiffel Tower."}])
    client = proxy.client()
    if stream:
        text = ""
        for chunk in client.chat.completions.create(model="demo", messages=messages, stream=True,  # type: ignore[call-overload]
                                                    extra_headers={"x-demo-reply": reply}, **kwargs):
            if chunk.choices:
                text += chunk.choices[0].delta.content or ""
        return text, ""
    raw = client.chat.completions.with_raw_response.create(model="demo", messages=messages,  # type: ignore[call-overload]
                                                           extra_headers={"x-demo-reply": reply}, **kwargs)
    return raw.parse().choices[0].message.content or "", raw.headers["x-guardproxy-verdict"]


@pytest.mark.parametrize("stream", [False, True])
def test_extension_context_grounded_and_invented(rag: RunningProxy, recorder: DemoRecorder, stream: bool) -> None:
    extension = {"extra_body": {"guardproxy": {"context": DOCS}}}
    text, verdict = ask(rag, GROUNDED, stream, **extension)
    assert text == GROUNDED
    assert "guardproxy" not in recorder.last().json
    if not stream:
        assert verdict == "pass"
    text, verdict = ask(rag, INVENTED, stream, **extension)
    assert text == INVENTED + NOTE
    if not stream:
        assert verdict == "flagged"


def test_tool_messages_are_context(rag: RunningProxy) -> None:
    messages = [
        {"role": "user", "content": "Tell me about the Eiffel Tower."},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "search", "arguments": '{"q": "eiffel"}'}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": DOCS[0]},
    ]
    assert ask(rag, GROUNDED, False, messages=messages) == (GROUNDED, "pass")
    assert ask(rag, INVENTED, False, messages=messages) == (INVENTED + NOTE, "flagged")


def test_delimited_context_in_the_system_prompt(rag: RunningProxy) -> None:
    messages = [{"role": "system", "content": f"Answer from the sources.\n<context>{DOCS[0]}</context>"},
                {"role": "user", "content": "Tell me about the Eiffel Tower."}]
    assert ask(rag, GROUNDED, True, messages=messages)[0] == GROUNDED
    assert ask(rag, INVENTED, True, messages=messages)[0] == INVENTED + NOTE


def test_no_context_means_no_finding(rag: RunningProxy) -> None:
    assert ask(rag, INVENTED, False) == (INVENTED, "pass")
