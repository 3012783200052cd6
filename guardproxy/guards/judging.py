"""Asking a judge model through the upstream: the request shape and reading its
JSON answer. Shared by guards that offer ``method: llm`` (topics, grounding)."""

from __future__ import annotations

import json
from typing import Any


class JudgeAnswerError(ValueError):
    """The judge answered, but not in the required format."""


def judge_chat_request(model: str, system_prompt: str, payload: dict[str, Any]) -> dict[str, Any]:
    """A deterministic ``/chat/completions`` body: the task in the system prompt,
    the data as JSON in the user message (so the judge treats it as data)."""
    return {
        "model": model,
        "temperature": 0,
        "messages": [
            {"role": "system", "content": system_prompt},
            {"role": "user", "content": json.dumps(payload, ensure_ascii=False)},
        ],
    }


def judge_answer_json(response: Any) -> Any:
    """The JSON the judge wrote as its message content."""
    try:
        content = response["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        raise JudgeAnswerError("the judge's response has no choices[0].message.content") from None
    if not isinstance(content, str):
        raise JudgeAnswerError("the judge's message content is not text")
    try:
        return json.loads(content.strip())
    except json.JSONDecodeError:
        raise JudgeAnswerError(f"the judge's answer is not JSON ({len(content)} characters)") from None
