"""`POST /v1/responses`: OpenAI Responses API `response` objects and their typed event streams.

One request is answered with one output item, a `message` or a `function_call`,
chosen like chat chooses: the `x-demo-reply` header first, then a call to an
offered function tool (unless the last input item is a `function_call_output`
or `tool_choice` is "none"), then the canned or echo reply. A stream is cut
from the finished response, so its deltas always add up to the JSON answer.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from starlette.responses import JSONResponse, Response

from guardproxy.demo.endpoint import DemoCall
from guardproxy.demo.errors import invalid_parameter_error, missing_parameter_error
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

_TOOL_ARGUMENT_PIECE_CHARS = 8
_ROLES = ("user", "assistant", "system", "developer")


async def responses(call: DemoCall) -> Response:
    model = call.model()
    items = _input_items(call.required("input"))
    instructions = call.body.get("instructions")
    if instructions is not None and not isinstance(instructions, str):
        raise invalid_parameter_error("instructions", "Invalid type for 'instructions': expected a string.")
    tools = _echoed_tools(call.body.get("tools"))

    reply_text, tool_call = _choose_answer(call, items, tools)
    if tool_call is not None:
        item = _function_call_item(tool_call)
        output_tokens = count_tokens(f"{tool_call.name} {tool_call.arguments}")
    else:
        item = _message_item(reply_text)
        output_tokens = count_tokens(reply_text)
    input_tokens = _input_tokens(instructions, items)
    usage = {
        "input_tokens": input_tokens,
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": output_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": input_tokens + output_tokens,
    }
    created_at = int(time.time())
    response = {
        **_response_fields(call.body, "resp_" + secrets.token_hex(24), created_at, model, instructions, tools),
        "status": "completed",
        "completed_at": created_at,
        "output": [item],
        "usage": usage,
    }
    if call.wants_stream():
        return sse_response(_stream_events(response), call.recorder, call.chunk_delay_seconds(), typed_events=True)
    return JSONResponse(response)


def _choose_answer(
    call: DemoCall, items: list[dict[str, Any]], tools: list[dict[str, Any]]
) -> tuple[str, PlannedToolCall | None]:
    """Reply text and function call, in priority order: reply header, function call, canned/echo."""
    forced_reply = header_reply(call.headers)
    if forced_reply is not None:
        return forced_reply, None
    user_text = next(
        (content_text(item.get("content")) for item in reversed(items) if item.get("role") == "user"), ""
    )
    functions = [tool for tool in tools if tool.get("type") == "function"]
    tool_choice = call.body.get("tool_choice")
    after_tool_result = items[-1].get("type") == "function_call_output"
    if functions and tool_choice != "none" and not after_tool_result:
        wanted = None
        if isinstance(tool_choice, dict) and tool_choice.get("type") == "function":
            wanted = str(tool_choice.get("name"))
        return "", plan_function_call(functions, wanted, user_text)
    return canned_or_echo_reply(user_text), None


def _input_items(value: Any) -> list[dict[str, Any]]:
    """`input` as a list of items; a plain string is one user message."""
    if isinstance(value, str):
        return [{"type": "message", "role": "user", "content": value}]
    if not isinstance(value, list) or not value or not all(isinstance(item, dict) for item in value):
        raise invalid_parameter_error(
            "input", "Invalid value for 'input': expected a string or a non-empty array of input items."
        )
    for index, item in enumerate(value):
        kind = item.get("type", "message")
        if kind == "message" and item.get("role") not in _ROLES:
            raise invalid_parameter_error(
                f"input[{index}].role",
                f"Invalid value for 'input[{index}].role': expected one of {', '.join(_ROLES)}.",
            )
        if kind in ("function_call", "function_call_output") and not isinstance(item.get("call_id"), str):
            raise missing_parameter_error(f"input[{index}].call_id")
    return value


def _echoed_tools(value: Any) -> list[dict[str, Any]]:
    """The request's tools as the response echoes them; function tools need a flat `name`."""
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(tool, dict) for tool in value):
        raise invalid_parameter_error("tools", "Invalid type for 'tools': expected an array of objects.")
    echoed = []
    for index, tool in enumerate(value):
        if tool.get("type") != "function":
            echoed.append(tool)
            continue
        if not isinstance(tool.get("name"), str):
            raise missing_parameter_error(f"tools[{index}].name")
        echoed.append({
            "type": "function",
            "name": tool["name"],
            "description": tool.get("description"),
            "parameters": tool.get("parameters"),
            "strict": tool.get("strict", True),
        })
    return echoed


def _input_tokens(instructions: str | None, items: list[dict[str, Any]]) -> int:
    texts = [instructions or ""]
    for item in items:
        texts.append(content_text(item.get("content")))
        texts.extend(str(item[key]) for key in ("arguments", "output") if key in item)
    return max(1, sum(len(text.split()) for text in texts))


def _response_fields(
    body: dict[str, Any],
    response_id: str,
    created_at: int,
    model: str,
    instructions: str | None,
    tools: list[dict[str, Any]],
) -> dict[str, Any]:
    """Every field of a `response` object except status, completed_at, output and usage."""
    return {
        "id": response_id,
        "object": "response",
        "created_at": created_at,
        "background": False,
        "error": None,
        "incomplete_details": None,
        "instructions": instructions,
        "max_output_tokens": body.get("max_output_tokens"),
        "max_tool_calls": body.get("max_tool_calls"),
        "model": model,
        "parallel_tool_calls": body.get("parallel_tool_calls", True),
        "previous_response_id": body.get("previous_response_id"),
        "prompt_cache_key": body.get("prompt_cache_key"),
        "reasoning": {"effort": None, "summary": None},
        "safety_identifier": body.get("safety_identifier"),
        "service_tier": "default",
        "store": body.get("store", True),
        "temperature": body.get("temperature", 1.0),
        "text": {"format": {"type": "text"}, "verbosity": "medium"},
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": tools,
        "top_logprobs": 0,
        "top_p": body.get("top_p", 1.0),
        "truncation": "disabled",
        "user": None,
        "metadata": body.get("metadata") or {},
    }


def _output_text(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def _message_item(text: str) -> dict[str, Any]:
    return {
        "id": "msg_" + secrets.token_hex(24),
        "type": "message",
        "status": "completed",
        "role": "assistant",
        "content": [_output_text(text)],
    }


def _function_call_item(tool_call: PlannedToolCall) -> dict[str, Any]:
    return {
        "id": "fc_" + secrets.token_hex(24),
        "type": "function_call",
        "status": "completed",
        "call_id": tool_call.call_id,
        "name": tool_call.name,
        "arguments": tool_call.arguments,
    }


def _stream_events(response: dict[str, Any]) -> list[dict[str, Any]]:
    """The events the real API sends for `response`, numbered by `sequence_number`."""
    in_progress = {**response, "status": "in_progress", "completed_at": None, "output": [], "usage": None}
    events: list[dict[str, Any]] = [
        {"type": "response.created", "response": in_progress},
        {"type": "response.in_progress", "response": in_progress},
    ]
    item = response["output"][0]
    if item["type"] == "message":
        text = item["content"][0]["text"]
        where = {"item_id": item["id"], "output_index": 0, "content_index": 0}
        events.append({"type": "response.output_item.added", "output_index": 0,
                       "item": {**item, "status": "in_progress", "content": []}})
        events.append({"type": "response.content_part.added", **where, "part": _output_text("")})
        events.extend({"type": "response.output_text.delta", **where, "delta": piece, "logprobs": []}
                      for piece in split_into_pieces(text))
        events.append({"type": "response.output_text.done", **where, "text": text, "logprobs": []})
        events.append({"type": "response.content_part.done", **where, "part": item["content"][0]})
    else:
        arguments = item["arguments"]
        where = {"item_id": item["id"], "output_index": 0}
        events.append({"type": "response.output_item.added", "output_index": 0,
                       "item": {**item, "status": "in_progress", "arguments": ""}})
        events.extend({"type": "response.function_call_arguments.delta", **where, "delta": piece}
                      for piece in split_fixed(arguments, _TOOL_ARGUMENT_PIECE_CHARS))
        events.append({"type": "response.function_call_arguments.done", **where, "arguments": arguments})
    events.append({"type": "response.output_item.done", "output_index": 0, "item": item})
    events.append({"type": "response.completed", "response": response})
    return [{**event, "sequence_number": number} for number, event in enumerate(events)]
