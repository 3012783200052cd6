"""``POST /v1/completions`` (legacy text completions): ``prompt`` in, each choice's ``text`` out."""

from __future__ import annotations

from typing import Any, ClassVar

from guardproxy.guards.base import Segment
from guardproxy.proxy.dialects.base import ALL_CHOICES, ChoiceStreamShape, Dialect, choices_of
from guardproxy.proxy.dialects.json_paths import string_segments, text_segment


class CompletionsDialect(Dialect):
    name = "completions"
    path = "/v1/completions"
    operation = "text_completion"
    required = "prompt"
    guards_output = True
    stream_family = "choices"
    stream_shape: ClassVar[ChoiceStreamShape | None] = ChoiceStreamShape(None, ("text",), calls=False)

    def request_segments(self, payload: dict[str, Any]) -> list[Segment]:
        return list(string_segments(payload.get("prompt"), ("prompt",)))

    def response_segments(self, payload: dict[str, Any]) -> list[Segment]:
        return [segment for index, choice in enumerate(choices_of(payload)) if isinstance(choice, dict)
                for segment in text_segment(choice.get("text"), ("choices", index, "text"), "assistant")]

    def withhold(self, payload: dict[str, Any], choices: set[int], message: str) -> None:
        for index, choice in enumerate(choices_of(payload)):
            if isinstance(choice, dict) and (ALL_CHOICES in choices or index in choices):
                choice["text"] = message
                choice["finish_reason"] = "content_filter"
                if "logprobs" in choice:
                    choice["logprobs"] = None

    def annotate(self, payload: dict[str, Any], choices: set[int], suffix: str) -> None:
        for index, choice in enumerate(choices_of(payload)):
            if index in choices and isinstance(choice, dict) and isinstance(choice.get("text"), str):
                choice["text"] += suffix
