"""`POST /v1/messages` and `/v1/messages/count_tokens`: the Anthropic Messages API.

The answer is one content block, chosen like chat chooses: the `x-demo-reply`
header first, then a `tool_use` of an offered tool (unless the last user turn
carries a `tool_result` or `tool_choice` is `{"type": "none"}`), then the canned
or echo reply. Streams are cut from the finished message, so their deltas add up
to the JSON answer; `count_tokens` counts exactly what `usage.input_tokens` does.
Validation messages follow Anthropic's `field: problem` style, and errors leave
in Anthropic's shape (see `anthropic_errors`).
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from typing import Any

from starlette.responses import JSONResponse, Response

from guardproxy.demo.endpoint import DemoCall
from guardproxy.demo.errors import DemoRequestError
from guardproxy.demo.replies import (
    canned_or_echo_reply,
    content_text,
    count_tokens,
    header_reply,
    split_fixed,
    split_into_pieces,
)
from guardproxy.demo.sse import sse_response
from guardproxy.demo.tool_calls import PlannedToolCall, plan_function_call

VERSION_HEADER = "anthropic-version"
_ROLES = ("user", "assistant")
_TOOL_INPUT_PIECE_CHARS = 8


@dataclass(frozen=True)
class _MessagesRequest:
    model: str
    messages: list[dict[str, Any]]
    system: str
    tools: list[dict[str, Any]]

    def input_tokens(self) -> int:
        texts = [self.system, *(_block_texts(message["content"]) for message in self.messages)]
        return max(1, sum(len(text.split()) for text in texts))


async def messages(call: DemoCall) -> Response:
    request = _parse(call)
    max_tokens = call.body.get("max_tokens")
    if max_tokens is None:
        raise _invalid("max_tokens: Field required")
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        raise _invalid("max_tokens: Input should be a positive integer")

    reply_text, tool_call = _choose_answer(call, request)
    if tool_call is not None:
        block: dict[str, Any] = {
            "type": "tool_use",
            "id": "toolu_" + secrets.token_hex(12),
            "name": tool_call.name,
            "input": json.loads(tool_call.arguments),
        }
        output_tokens = count_tokens(f"{tool_call.name} {tool_call.arguments}")
    else:
        block = {"type": "text", "text": reply_text}
        output_tokens = count_tokens(reply_text)
    message = {
        "id": "msg_" + secrets.token_hex(12),
        "type": "message",
        "role": "assistant",
        "model": request.model,
        "content": [block],
        "stop_reason": "tool_use" if tool_call else "end_turn",
        "stop_sequence": None,
        "usage": {
            "input_tokens": request.input_tokens(),
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "output_tokens": output_tokens,
            "service_tier": "standard",
        },
    }
    if call.wants_stream():
        return sse_response(_stream_events(message), call.recorder, call.chunk_delay_seconds(), typed_events=True)
    return JSONResponse(message)


async def count_message_tokens(call: DemoCall) -> Response:
    return JSONResponse({"input_tokens": _parse(call).input_tokens()})


def _invalid(message: str) -> DemoRequestError:
    return DemoRequestError(400, message)


def _parse(call: DemoCall) -> _MessagesRequest:
    """The fields both routes share, checked the way the real API checks them."""
    if VERSION_HEADER not in call.headers:
        raise _invalid(f"{VERSION_HEADER}: header is required")
    body = call.body
    model = body.get("model")
    if model is None:
        raise _invalid("model: Field required")
    if not isinstance(model, str) or not model:
        raise _invalid("model: Input should be a valid string")
    messages = body.get("messages")
    if messages is None:
        raise _invalid("messages: Field required")
    if not isinstance(messages, list) or not messages:
        raise _invalid("messages: at least one message is required")
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in _ROLES:
            raise _invalid(f"messages.{index}.role: Input should be 'user' or 'assistant'")
        content = message.get("content")
        if not isinstance(content, str) and not (
            isinstance(content, list) and all(isinstance(block, dict) and "type" in block for block in content)
        ):
            raise _invalid(f"messages.{index}.content: Input should be a valid string or a list of content blocks")
    system = body.get("system")
    if system is not None and not isinstance(system, (str, list)):
        raise _invalid("system: Input should be a valid string or a list of text blocks")
    tools = body.get("tools") or []
    if not isinstance(tools, list):
        raise _invalid("tools: Input should be a valid list")
    for index, tool in enumerate(tools):
        if not isinstance(tool, dict) or not isinstance(tool.get("name"), str):
            raise _invalid(f"tools.{index}.name: Field required")
    return _MessagesRequest(model=model, messages=messages, system=_block_texts(system), tools=tools)


def _block_texts(content: Any) -> str:
    """All text a content carries: text blocks, tool inputs and tool results."""
    if not isinstance(content, list):
        return content_text(content)
    texts = [content_text(content)]
    for block in content:
        if not isinstance(block, dict):
            continue
        if block.get("type") == "tool_use":
            texts.append(f"{block.get('name', '')} {json.dumps(block.get('input', {}))}")
        elif block.get("type") == "tool_result":
            texts.append(content_text(block.get("content")))
    return " ".join(text for text in texts if text)


def _choose_answer(call: DemoCall, request: _MessagesRequest) -> tuple[str, PlannedToolCall | None]:
    """Reply text and tool call, in priority order: reply header, tool use, canned/echo."""
    forced_reply = header_reply(call.headers)
    if forced_reply is not None:
        return forced_reply, None
    user_texts = (content_text(m["content"]) for m in reversed(request.messages) if m["role"] == "user")
    user_text = next((text for text in user_texts if text), "")
    last = request.messages[-1]
    last_blocks = last["content"] if isinstance(last["content"], list) else []
    after_tool_result = last["role"] == "user" and any(block["type"] == "tool_result" for block in last_blocks)
    tool_choice = call.body.get("tool_choice")
    choice_type = tool_choice.get("type", "auto") if isinstance(tool_choice, dict) else "auto"
    # Tools without an input_schema are Anthropic's server tools (web search, ...), which the demo never runs.
    functions = [
        {"name": tool["name"], "parameters": tool["input_schema"]}
        for tool in request.tools
        if isinstance(tool.get("input_schema"), dict)
    ]
    if functions and choice_type != "none" and not after_tool_result:
        wanted = str(tool_choice.get("name")) if isinstance(tool_choice, dict) and choice_type == "tool" else None
        return "", plan_function_call(functions, wanted, user_text)
    return canned_or_echo_reply(user_text), None


def _stream_events(message: dict[str, Any]) -> list[dict[str, Any]]:
    """The events the real API sends for `message`, in its order."""
    block = message["content"][0]
    started = {
        **message,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {**message["usage"], "output_tokens": 1},
    }
    if block["type"] == "tool_use":
        opening = {**block, "input": {}}
        deltas = [
            {"type": "input_json_delta", "partial_json": piece}
            for piece in split_fixed(json.dumps(block["input"], ensure_ascii=False), _TOOL_INPUT_PIECE_CHARS)
        ]
    else:
        opening = {"type": "text", "text": ""}
        deltas = [{"type": "text_delta", "text": piece} for piece in split_into_pieces(block["text"])]
    return [
        {"type": "message_start", "message": started},
        {"type": "content_block_start", "index": 0, "content_block": opening},
        {"type": "ping"},
        *({"type": "content_block_delta", "index": 0, "delta": delta} for delta in deltas),
        {"type": "content_block_stop", "index": 0},
        {
            "type": "message_delta",
            "delta": {"stop_reason": message["stop_reason"], "stop_sequence": None},
            "usage": {"output_tokens": message["usage"]["output_tokens"]},
        },
        {"type": "message_stop"},
    ]
