"""When and how the demo model answers with a function call (chat, Responses, Messages).

The demo calls a tool whenever it is offered one and has not just received a
tool result, so guard tests can exercise tool-call arguments deterministically:
string arguments carry the user's text, everything else gets a neutral default.
"""

from __future__ import annotations

import copy
import json
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from guardproxy.demo.errors import invalid_parameter_error

_DEFAULT_BY_JSON_TYPE: dict[str, Any] = {
    "number": 0,
    "integer": 0,
    "boolean": False,
    "array": [],
    "object": {},
    "null": None,
}


@dataclass(frozen=True)
class PlannedToolCall:
    """A function call the demo model will return; `arguments` is a JSON string.

    With `n > 1` every choice gets its own copy with a fresh id (`with_new_id`).
    """

    call_id: str
    name: str
    arguments: str

    def with_new_id(self) -> PlannedToolCall:
        return replace(self, call_id=new_call_id())

    def as_message_tool_call(self) -> dict[str, Any]:
        return {
            "id": self.call_id,
            "type": "function",
            "function": {"name": self.name, "arguments": self.arguments},
        }


def plan_tool_call(request_body: dict[str, Any], user_text: str) -> PlannedToolCall | None:
    """The call to make for this chat request, or None when it should answer in text."""
    tools = request_body.get("tools")
    tool_choice = request_body.get("tool_choice")
    messages = request_body.get("messages") or []
    if not isinstance(tools, list) or not tools or tool_choice == "none":
        return None
    last_message = messages[-1] if messages else None
    if isinstance(last_message, dict) and last_message.get("role") == "tool":
        return None

    functions: list[dict[str, Any]] = [
        tool["function"] for tool in tools if isinstance(tool, dict) and isinstance(tool.get("function"), dict)
    ]
    if not functions:
        raise invalid_parameter_error("tools", "Each tool must have a 'function' object.")
    wanted_name: str | None = None
    if isinstance(tool_choice, dict):
        chosen = tool_choice.get("function")
        wanted_name = str(chosen.get("name") if isinstance(chosen, dict) else None)
    return plan_function_call(functions, wanted_name, user_text)


def plan_function_call(
    functions: Sequence[Mapping[str, Any]], wanted_name: str | None, user_text: str
) -> PlannedToolCall:
    """A call to the function named `wanted_name` (the first one when None).

    Every API names its functions differently (`tools[].function` in chat, flat
    tools in Responses, `input_schema` in Messages); callers hand over plain
    `{"name", "parameters"}` mappings, so the arguments are chosen the same way
    for all of them. An unknown `wanted_name` is a 400 naming `tool_choice`.
    """
    function = _chosen_function(functions, wanted_name)
    parameters = function.get("parameters")
    properties = parameters.get("properties") if isinstance(parameters, dict) else None
    arguments = {
        name: _argument_value(schema, user_text)
        for name, schema in (properties.items() if isinstance(properties, dict) else ())
    }
    return PlannedToolCall(
        call_id=new_call_id(),
        name=str(function.get("name", "")),
        arguments=json.dumps(arguments, ensure_ascii=False),
    )


def new_call_id() -> str:
    return "call_" + secrets.token_hex(12)


def _chosen_function(functions: Sequence[Mapping[str, Any]], wanted_name: str | None) -> Mapping[str, Any]:
    if wanted_name is None:
        return functions[0]
    for function in functions:
        if function.get("name") == wanted_name:
            return function
    raise invalid_parameter_error(
        "tool_choice",
        f"Invalid value for 'tool_choice': no function named '{wanted_name}' is in 'tools'.",
    )


def _argument_value(schema: Any, user_text: str) -> Any:
    if not isinstance(schema, dict):
        return user_text
    enum = schema.get("enum")
    if isinstance(enum, list) and enum:
        return enum[0]
    json_type = schema.get("type")
    if isinstance(json_type, list):
        json_type = next((name for name in json_type if name != "null"), "null")
    if json_type == "string":
        return user_text
    return copy.copy(_DEFAULT_BY_JSON_TYPE.get(str(json_type)))
