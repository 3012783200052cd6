"""One driver per guarded API for the contract suite (``test_contract.py``): how to
script the upstream's answer (a text, or a tool call) in that API's shape, streamed
or not, and how the API's own SDK client calls the proxy and reads the answer.

Each call returns a ``Seen``: the text and the tool-call arguments the client got,
and whether the answer ended as that API's content-filter stop (chat's
``finish_reason: content_filter``, a Responses ``incomplete`` response with reason
``content_filter``, an Anthropic ``stop_reason: refusal``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import anthropic
import openai

from tests.scripted_upstream import (
    Answer,
    chat_answer,
    chat_chunk,
    messages_answer,
    messages_events,
    responses_answer,
    responses_events,
    split,
)

AZURE_VERSION = "2024-10-21"
DEPLOYMENT = "contract-deployment"


@dataclass
class Seen:
    text: str = ""
    arguments: str = ""
    filtered: bool = False
    headers: dict[str, str] = field(default_factory=dict)


def _tool_call(name: str, arguments: str) -> dict[str, Any]:
    return {"id": "call_1", "type": "function", "function": {"name": name, "arguments": arguments}}


class Chat:
    name = "chat"
    output = True

    def client(self, url: str) -> Any:
        return openai.OpenAI(base_url=url + "/v1", api_key="sk-client", max_retries=0, timeout=20)

    def script(self, text: str | None, call: tuple[str, str] | None, stream: bool) -> Answer:
        if not stream:
            message = {"content": None, "tool_calls": [_tool_call(*call)]} if call else {"content": text}
            return Answer(json=chat_answer(message, finish="tool_calls" if call else "stop"))
        if call:
            first = {"index": 0, "id": "call_1", "type": "function", "function": {"name": call[0], "arguments": ""}}
            events = [chat_chunk(role="assistant", tool_calls=[first]),
                      *(chat_chunk(tool_calls=[{"index": 0, "function": {"arguments": p}}]) for p in split(call[1], 5)),
                      chat_chunk(finish="tool_calls")]
        else:
            events = [chat_chunk(role="assistant", content=""), *(chat_chunk(content=p) for p in split(text or "")),
                      chat_chunk(finish="stop")]
        return Answer(events=[*events, "[DONE]"])

    def create(self, client: Any, user: str, stream: bool) -> Any:
        return client.chat.completions.with_raw_response.create(
            model="m", messages=[{"role": "user", "content": user}], stream=stream)

    def call(self, url: str, user: str, stream: bool) -> Seen:
        raw = self.create(self.client(url), user, stream)
        seen = Seen(headers=dict(raw.headers))
        if not stream:
            choice = raw.parse().choices[0]
            seen.text = choice.message.content or ""
            seen.arguments = "".join(c.function.arguments for c in choice.message.tool_calls or [])
            seen.filtered = choice.finish_reason == "content_filter"
            return seen
        for chunk in raw.parse():
            for choice in chunk.choices:
                seen.text += self.delta_text(choice)
                for call in getattr(choice.delta, "tool_calls", None) or []:
                    seen.arguments += call.function.arguments or "" if call.function else ""
                seen.filtered |= choice.finish_reason == "content_filter"
        return seen

    @staticmethod
    def delta_text(choice: Any) -> str:
        return str(choice.delta.content or "")


class AzureChat(Chat):
    name = "azure_chat"

    def client(self, url: str) -> Any:
        return openai.AzureOpenAI(azure_endpoint=url, api_version=AZURE_VERSION, api_key="azure-client-key",
                                  max_retries=0, timeout=20)

    def create(self, client: Any, user: str, stream: bool) -> Any:
        return client.chat.completions.with_raw_response.create(
            model=DEPLOYMENT, messages=[{"role": "user", "content": user}], stream=stream)


class Completions(Chat):
    name = "completions"

    @staticmethod
    def _answer(text: str, finish: str | None) -> dict[str, Any]:
        return {"id": "cmpl-1", "object": "text_completion", "created": 1, "model": "m",
                "choices": [{"index": 0, "text": text, "logprobs": None, "finish_reason": finish}]}

    def script(self, text: str | None, call: tuple[str, str] | None, stream: bool) -> Answer:
        assert call is None, "text completions have no tool calls"
        if not stream:
            return Answer(json={**self._answer(text or "", "stop"),
                                "usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}})
        # The real API streams finish_reason null until the last chunk; the SDK's Completion type (which the
        # scripted upstream validates against) does not allow that, so those chunks go as JSON text.
        return Answer(events=[*(json.dumps(self._answer(p, None)) for p in split(text or "")),
                              self._answer("", "stop"), "[DONE]"])

    def create(self, client: Any, user: str, stream: bool) -> Any:
        return client.completions.with_raw_response.create(model="m", prompt=user, stream=stream)

    def call(self, url: str, user: str, stream: bool) -> Seen:
        raw = self.create(self.client(url), user, stream)
        seen = Seen(headers=dict(raw.headers))
        for chunk in ([raw.parse()] if not stream else raw.parse()):
            for choice in chunk.choices:
                seen.text += choice.text
                seen.filtered |= choice.finish_reason == "content_filter"
        return seen


class Embeddings(Chat):
    name = "embeddings"
    output = False

    def script(self, text: str | None, call: tuple[str, str] | None, stream: bool) -> Answer:
        return Answer(json={"object": "list", "model": "m", "usage": {"prompt_tokens": 1, "total_tokens": 1},
                            "data": [{"object": "embedding", "index": 0, "embedding": [0.5, 0.25]}]})

    def call(self, url: str, user: str, stream: bool) -> Seen:
        raw = self.client(url).embeddings.with_raw_response.create(model="m", input=user)
        assert raw.parse().data[0].embedding == [0.5, 0.25]
        return Seen(headers=dict(raw.headers))


class Responses(Chat):
    name = "responses"

    def script(self, text: str | None, call: tuple[str, str] | None, stream: bool) -> Answer:
        if not stream:
            return Answer(json=responses_answer(text, call))
        if call:
            return Answer(events=responses_events(call=(call[0], split(call[1], 5))))
        return Answer(events=responses_events(split(text or "")))

    def call(self, url: str, user: str, stream: bool) -> Seen:
        raw = self.client(url).responses.with_raw_response.create(model="m", input=user, stream=stream)
        seen = Seen(headers=dict(raw.headers))
        if not stream:
            response = raw.parse()
            self._final(seen, response)
            seen.text = response.output_text
            return seen
        final = None
        for event in raw.parse():
            if event.type == "response.output_text.delta":
                seen.text += event.delta
            elif event.type == "response.function_call_arguments.delta":
                seen.arguments += event.delta
            elif event.type in ("response.completed", "response.incomplete"):
                final = event.response
        assert final is not None, "the stream ended without a final response"
        text, arguments = seen.text, seen.arguments
        self._final(seen, final)
        assert (final.output_text, seen.arguments) == (text, arguments), "the final response disagrees with deltas"
        return seen

    @staticmethod
    def _final(seen: Seen, response: Any) -> None:
        seen.arguments = "".join(i.arguments for i in response.output if i.type == "function_call")
        seen.filtered = response.status == "incomplete" and response.incomplete_details is not None \
            and response.incomplete_details.reason == "content_filter"


class Messages:
    name = "messages"
    output = True

    def client(self, url: str) -> anthropic.Anthropic:
        return anthropic.Anthropic(base_url=url, api_key="sk-ant-client", max_retries=0, timeout=20)

    def script(self, text: str | None, call: tuple[str, str] | None, stream: bool) -> Answer:
        if not stream:
            return Answer(json=messages_answer(text, call))
        if call:
            return Answer(events=messages_events(tool=(call[0], split(call[1], 5))))
        return Answer(events=messages_events(split(text or "")))

    def call(self, url: str, user: str, stream: bool) -> Seen:
        raw = self.client(url).messages.with_raw_response.create(
            model="m", max_tokens=100, messages=[{"role": "user", "content": user}], stream=stream)
        seen = Seen(headers=dict(raw.headers))
        if not stream:
            message = raw.parse()
            seen.text = "".join(b.text for b in message.content if b.type == "text")
            seen.arguments = "".join(json.dumps(b.input) for b in message.content if b.type == "tool_use")
            seen.filtered = message.stop_reason == "refusal"
            return seen
        types = []
        for event in raw.parse():
            types.append(event.type)
            if event.type == "content_block_delta" and event.delta.type == "text_delta":
                seen.text += event.delta.text
            elif event.type == "content_block_delta" and event.delta.type == "input_json_delta":
                seen.arguments += event.delta.partial_json
            elif event.type == "message_delta":
                seen.filtered = event.delta.stop_reason == "refusal"
        assert types[0] == "message_start" and types[-2:] == ["message_delta", "message_stop"], types
        assert types.count("content_block_start") == types.count("content_block_stop"), types
        return seen


APIS = [Chat(), Completions(), Embeddings(), Responses(), Messages(), AzureChat()]
