"""The streamed output stage of the Responses API (``stream: true`` on ``/v1/responses``).

Each ``output_text`` (or ``refusal``) part of each output item is a channel of
``channel_guard.py``: its ``response.output_text.delta`` events are released
behind the hold-back, as chat's deltas are. A ``function_call`` item's argument
deltas (and a ``custom_tool_call``'s input deltas) are held whole until their
``.done``, checked as
one, and sent as one delta. The ``.done`` events, ``response.output_item.done``
and the final ``response.completed`` carry whole texts, so they are rewritten to
the text actually released: the client's accumulated text and the final response
always agree. Text that arrives only in a ``.done`` event or in the final
response (never as deltas) is checked there before it leaves.

The Responses API is one answer, not a set of choices: a block ends the stream
with ``response.incomplete`` (``incomplete_details: {"reason": "content_filter"}``)
whose output holds only what had been released. The proxy numbers the events it
sends (``sequence_number``), since it adds and drops some.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

from guardproxy.engine import Engine
from guardproxy.guards import GuardContext
from guardproxy.guards.base import PathPart
from guardproxy.policy.schema import GuardEntry, Policy
from guardproxy.proxy.channel_guard import ChainRan, ChannelGuard, MalformedEvent, is_error, payload_of
from guardproxy.proxy.dialects.json_paths import argument_segments, text_segment
from guardproxy.proxy.restoration import Restorer
from guardproxy.proxy.sse import SSEEvent, encode_event
from guardproxy.proxy.stream_end import END_EVENTS

_TEXT_EVENTS = {"response.output_text.delta": "text", "response.refusal.delta": "refusal"}
_DONE_EVENTS = {"response.output_text.done": "text", "response.refusal.done": "refusal"}
_PART_FIELDS = {"output_text": "text", "refusal": "refusal"}
_TERMINAL = END_EVENTS["responses"]


# Calls whose text is held until it is whole: a function's JSON arguments, a custom tool's free-form input.
_CALL_ITEMS = {"function_call": "arguments", "custom_tool_call": "input"}
_CALL_DELTAS = ("response.function_call_arguments.delta", "response.custom_tool_call_input.delta")
_CALL_DONE = {"response.function_call_arguments.done": ("arguments", "response.function_call_arguments.delta"),
              "response.custom_tool_call_input.done": ("input", "response.custom_tool_call_input.delta")}
_INDEX_KEYS = ("output_index", "content_index", "summary_index")  # where an event points into the response


def _channel(output_index: Any, content_index: Any, field: str) -> str:
    return f"{output_index}:{content_index}:{field}"


class ResponsesStreamGuard(ChannelGuard):
    def __init__(
        self, engine: Engine, policy: Policy, entries: Sequence[GuardEntry], context: GuardContext,
        restorer: Restorer | None = None, on_run: ChainRan | None = None,
    ) -> None:
        super().__init__(engine, policy, entries, context, restorer, on_run)
        self._answer = self._state(0)
        self._sequence = 0
        self._response: dict[str, Any] = {}  # the latest lifecycle snapshot (created, in_progress)
        self._items: dict[int, dict[str, Any]] = {}  # output items as the client knows them
        self._sent: dict[str, str] = {}  # per channel: the text released
        self._arguments: dict[int, str] = {}  # per function_call item: deltas held
        self._checked: dict[int, str] = {}  # per function_call item: the arguments released
        self._closed: set[str] = set()  # channels ended
        self._noted = False

    def _path(self, index: int, name: str) -> tuple[PathPart, ...]:
        output_index, content_index, field = name.split(":")
        return ("output", int(output_index), "content", int(content_index), field)

    def _emit(self, payload: dict[str, Any]) -> bytes:
        payload["sequence_number"] = self._sequence
        self._sequence += 1
        return encode_event(str(payload.get("type")), payload)

    async def process(self, event: SSEEvent) -> bytes:
        if self.ended:
            return b""
        payload = payload_of(event)
        if payload is not None and is_error(payload):
            out = await self.finish()  # a block found there ends the stream as response.incomplete instead
            if self._answer.blocked:
                return out
            return out + (self._emit(payload) if payload.get("type") == "error" else event.raw)
        if payload is None or not isinstance(payload.get("type"), str):
            return event.raw  # comments, keep-alives, [DONE]
        kind = payload["type"]
        for key in _INDEX_KEYS:
            if key in payload and (type(payload[key]) is not int or payload[key] < 0):
                raise MalformedEvent(f"{kind}: {key} is not an index")
        if kind in _TEXT_EVENTS:
            return await self._text_delta(payload, _TEXT_EVENTS[kind])
        if kind in _DONE_EVENTS:
            return await self._text_done(payload, _DONE_EVENTS[kind])
        if kind in _CALL_DELTAS:
            index = payload.get("output_index")
            if isinstance(index, int):
                self._arguments[index] = self._arguments.get(index, "") + str(payload.get("delta") or "")
            return b""
        if kind in _CALL_DONE:
            return await self._arguments_done(payload, kind)
        if kind == "response.content_part.done":
            return await self._part_done(payload)
        if kind == "response.content_part.added":
            self._add_part(payload)
        if kind in ("response.output_item.added", "response.output_item.done"):
            index, item = payload.get("output_index"), payload.get("item")
            if isinstance(index, int) and isinstance(item, dict):
                before = b""
                if kind == "response.output_item.done":
                    settled = await self._settle_item(index, item)
                    if settled is None:
                        return self._incomplete()
                    before = settled
                self._items[index] = copy.deepcopy(item)
                return before + self._emit(payload)
        elif kind in _TERMINAL:
            return await self._terminal(payload)
        elif isinstance(payload.get("response"), dict):
            self._response = payload["response"]
        return self._emit(payload)

    def _add_part(self, payload: dict[str, Any]) -> None:
        item = self._items.get(payload.get("output_index"))  # type: ignore[arg-type]
        index, part = payload.get("content_index"), payload.get("part")
        if item is not None and isinstance(item.get("content"), list) and isinstance(index, int) \
                and isinstance(part, dict) and index == len(item["content"]):
            item["content"].append(copy.deepcopy(part))

    async def _text_delta(self, payload: dict[str, Any], field: str) -> bytes:
        name = _channel(payload.get("output_index"), payload.get("content_index"), field)
        piece = await self.feed(self._answer, name, str(payload.get("delta") or ""), final=False)
        if self._answer.blocked:
            return self._incomplete()
        if not piece:
            return b""
        self._sent[name] = self._sent.get(name, "") + piece
        if piece != payload.get("delta") and "logprobs" in payload:
            payload["logprobs"] = []  # the tokens' log probabilities no longer match the text
        return self._emit({**payload, "delta": piece})

    async def _finish_channel(self, name: str, whole: str | None, payload: dict[str, Any], field: str) -> bytes:
        """End a channel: what is held (and any of ``whole`` that never came as deltas) is
        checked and released, with the notes of ``annotate`` on the first text part."""
        buffer = self._answer.channels.get(name)
        received = buffer.text if buffer is not None else ""
        rest = whole[len(received):] if isinstance(whole, str) and whole.startswith(received) else ""
        if name in self._closed and not rest:
            return b""
        self._closed.add(name)
        piece = await self.feed(self._answer, name, rest, final=True)
        if self._answer.blocked:
            return b""
        if field == "text" and self._answer.notes and not self._noted:
            piece += "\n\n" + "\n".join(self._answer.notes)
            self._noted = True
        self._sent[name] = self._sent.get(name, "") + piece
        if not piece:
            return b""
        delta_type = "response.output_text.delta" if field == "text" else "response.refusal.delta"
        item = self._items.get(payload.get("output_index"))  # type: ignore[arg-type]
        item_id = payload.get("item_id") or (item.get("id") if item is not None else None) or ""
        delta: dict[str, Any] = {"type": delta_type, "item_id": item_id,
                                 "output_index": payload.get("output_index"),
                                 "content_index": payload.get("content_index"), "delta": piece}
        if field == "text":
            delta["logprobs"] = []
        return self._emit(delta)

    async def _text_done(self, payload: dict[str, Any], field: str) -> bytes:
        name = _channel(payload.get("output_index"), payload.get("content_index"), field)
        out = await self._finish_channel(name, payload.get(field), payload, field)
        if self._answer.blocked:
            return self._incomplete()
        return out + self._emit({**payload, field: self._sent.get(name, "")})

    async def _part_done(self, payload: dict[str, Any]) -> bytes:
        part = payload.get("part")
        field = _PART_FIELDS.get(str(part.get("type"))) if isinstance(part, dict) else None
        out = b""
        if isinstance(part, dict) and field is not None:
            name = _channel(payload.get("output_index"), payload.get("content_index"), field)
            out = await self._finish_channel(name, part.get(field), payload, field)
            if self._answer.blocked:
                return self._incomplete()
            part[field] = self._sent.get(name, "")
        return out + self._emit(payload)

    async def _check_arguments(self, index: int, arguments: str, plain: bool = False) -> str | None:
        """The arguments (``plain``: a custom tool's free-form input) as released, checked once;
        None when they are blocked."""
        if index in self._checked:
            return self._checked[index]
        holder = {"arguments": arguments}
        found = text_segment(arguments, ("arguments",), "assistant", call=True) if plain \
            else argument_segments(arguments, ("arguments",), "assistant")
        result = await self.check_whole(list(found), self._answer)
        if result is None:
            return None
        self.rewrite(holder, result)
        self._checked[index] = holder["arguments"]
        return holder["arguments"]

    async def _arguments_done(self, payload: dict[str, Any], kind: str) -> bytes:
        index = payload.get("output_index")
        if not isinstance(index, int):
            return self._emit(payload)
        field, delta_kind = _CALL_DONE[kind]
        arguments = payload.get(field)
        whole = arguments if isinstance(arguments, str) else self._arguments.get(index, "")
        checked = await self._check_arguments(index, whole, plain=field == "input")
        if checked is None:
            return self._incomplete()
        delta = {"type": delta_kind, "item_id": payload.get("item_id"), "output_index": index, "delta": checked}
        return (self._emit(delta) if checked else b"") + self._emit({**payload, field: checked})

    async def _settle_item(self, index: int, item: dict[str, Any]) -> bytes | None:
        """Rewrite a whole output item to what was released, checking any text in it that
        never came as deltas: the delta events for that text, or None when it is blocked."""
        out = b""
        if item.get("type") == "message" and isinstance(item.get("content"), list):
            for content_index, part in enumerate(item["content"]):
                field = _PART_FIELDS.get(str(part.get("type"))) if isinstance(part, dict) else None
                if field is None:
                    continue
                name = _channel(index, content_index, field)
                where = {"item_id": item.get("id"), "output_index": index, "content_index": content_index}
                out += await self._finish_channel(name, part.get(field), where, field)
                if self._answer.blocked:
                    return None
                part[field] = self._sent.get(name, "")
        elif item.get("type") in _CALL_ITEMS and isinstance(item.get(_CALL_ITEMS[item["type"]]), str):
            field = _CALL_ITEMS[item["type"]]
            checked = await self._check_arguments(index, item[field], plain=field == "input")
            if checked is None:
                return None
            item[field] = checked
        return out

    async def _terminal(self, payload: dict[str, Any]) -> bytes:
        response = payload.get("response")
        out = b""
        if isinstance(response, dict) and isinstance(response.get("output"), list):
            for index, item in enumerate(response["output"]):
                settled = await self._settle_item(index, item) if isinstance(item, dict) else b""
                if settled is None:
                    return out + self._incomplete()
                out += settled
        out += self.trailer() + self._emit(payload)
        self.ended = True
        return out

    def _incomplete(self) -> bytes:
        """End the stream: the response as released so far, incomplete for a content filter."""
        response = copy.deepcopy(self._response)
        response.update(status="incomplete", incomplete_details={"reason": "content_filter"})
        output = []
        for index in sorted(self._items):
            item = copy.deepcopy(self._items[index])
            if item.get("type") == "message" and isinstance(item.get("content"), list):
                for content_index, part in enumerate(item["content"]):
                    field = _PART_FIELDS.get(str(part.get("type"))) if isinstance(part, dict) else None
                    if field is not None:
                        part[field] = self._sent.get(_channel(index, content_index, field), "")
            elif item.get("type") in _CALL_ITEMS:
                if index not in self._checked:
                    continue  # its arguments (or input) never left
                item[_CALL_ITEMS[item["type"]]] = self._checked[index]
            if item.get("status") == "in_progress":
                item["status"] = "incomplete"
            output.append(item)
        response["output"] = output
        self.ended = True
        return self.trailer() + self._emit({"type": "response.incomplete", "response": response})

    async def finish(self) -> bytes:
        """The upstream ended without a final event (or with an error): release what each channel holds."""
        if self.ended:
            return b""
        out = b""
        for name in list(self._answer.channels):
            output_index, content_index, field = name.split(":")
            out += await self._finish_channel(name, None, {"output_index": int(output_index),
                                                          "content_index": int(content_index)}, field)
            if self._answer.blocked:
                return out + self._incomplete()
        self.ended = True
        return out + self.trailer()
