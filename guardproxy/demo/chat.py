"""`POST /v1/chat/completions`: `chat.completion` objects and `chat.completion.chunk` streams.

Every choice of one request carries the same answer (text or tool call), so a
test can predict the whole response from the request alone.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse, Response

from guardproxy.demo.endpoint import DemoCall
from guardproxy.demo.envelope import CompletionEnvelope, token_usage
from guardproxy.demo.errors import invalid_parameter_error
from guardproxy.demo.replies import (
    canned_or_echo_reply,
    content_text,
    count_tokens,
    header_reply,
    last_user_text,
    split_fixed,
    split_into_pieces,
)
from guardproxy.demo.sse import sse_response
from guardproxy.demo.tool_calls import PlannedToolCall, plan_tool_call

_CHUNK_OBJECT = "chat.completion.chunk"
_TOOL_ARGUMENT_PIECE_CHARS = 8


async def chat_completions(call: DemoCall) -> Response:
    messages = call.required("messages")
    if not isinstance(messages, list) or not messages:
        raise invalid_parameter_error("messages", "'messages' must be a non-empty array.")
    envelope = CompletionEnvelope.new("chatcmpl", call.model())
    choice_count = call.choice_count()

    reply_text, tool_call = _choose_answer(call, messages)
    tool_calls = [tool_call.with_new_id() for _ in range(choice_count)] if tool_call else None
    completion_tokens = count_tokens(f"{tool_call.name} {tool_call.arguments}" if tool_call else reply_text)
    usage = _chat_usage(_prompt_tokens(messages), completion_tokens * choice_count)

    if call.wants_stream():
        chunks = _stream_chunks(envelope, reply_text, tool_calls, choice_count)
        if call.wants_stream_usage():
            chunks = [{**chunk, "usage": None} for chunk in chunks]
            chunks.append({**envelope.fields(_CHUNK_OBJECT), "choices": [], "usage": usage})
        return sse_response(chunks, call.recorder, call.chunk_delay_seconds())

    choices = [
        {
            "index": index,
            "message": _assistant_message(reply_text, tool_calls[index] if tool_calls else None),
            "logprobs": None,
            "finish_reason": "tool_calls" if tool_calls else "stop",
        }
        for index in range(choice_count)
    ]
    completion = {
        **envelope.fields("chat.completion"),
        "choices": choices,
        "usage": usage,
        "service_tier": "default",
    }
    return JSONResponse(completion)


def _choose_answer(call: DemoCall, messages: list[Any]) -> tuple[str, PlannedToolCall | None]:
    """Reply text and tool call, in priority order: reply header, tool call, canned/echo."""
    forced_reply = header_reply(call.headers)
    if forced_reply is not None:
        return forced_reply, None
    user_text = last_user_text(messages)
    tool_call = plan_tool_call(call.body, user_text)
    if tool_call is not None:
        return "", tool_call
    return canned_or_echo_reply(user_text), None


def _assistant_message(reply_text: str, tool_call: PlannedToolCall | None) -> dict[str, Any]:
    message: dict[str, Any] = {
        "role": "assistant",
        "content": None if tool_call else reply_text,
        "refusal": None,
        "annotations": [],
    }
    if tool_call:
        message["tool_calls"] = [tool_call.as_message_tool_call()]
    return message


def _stream_chunks(
    envelope: CompletionEnvelope,
    reply_text: str,
    tool_calls: list[PlannedToolCall] | None,
    choice_count: int,
) -> list[dict[str, Any]]:
    """All chunks of the stream, choice after choice, each chunk holding one choice."""

    def chunk(index: int, delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        choice = {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        return {**envelope.fields(_CHUNK_OBJECT), "choices": [choice]}

    chunks: list[dict[str, Any]] = []
    for index in range(choice_count):
        if tool_calls:
            tool_call = tool_calls[index]
            opening = {"index": 0, **tool_call.as_message_tool_call()}
            opening["function"] = {"name": tool_call.name, "arguments": ""}
            delta = {"role": "assistant", "content": None, "tool_calls": [opening], "refusal": None}
            chunks.append(chunk(index, delta))
            chunks.extend(
                chunk(index, {"tool_calls": [{"index": 0, "function": {"arguments": piece}}]})
                for piece in split_fixed(tool_call.arguments, _TOOL_ARGUMENT_PIECE_CHARS)
            )
            chunks.append(chunk(index, {}, "tool_calls"))
        else:
            chunks.append(chunk(index, {"role": "assistant", "content": "", "refusal": None}))
            chunks.extend(chunk(index, {"content": piece}) for piece in split_into_pieces(reply_text))
            chunks.append(chunk(index, {}, "stop"))
    return chunks


def _prompt_tokens(messages: list[Any]) -> int:
    texts = (content_text(message.get("content")) for message in messages if isinstance(message, dict))
    return max(1, sum(len(text.split()) for text in texts))


def _chat_usage(prompt_tokens: int, completion_tokens: int) -> dict[str, Any]:
    return {
        **token_usage(prompt_tokens, completion_tokens),
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }
