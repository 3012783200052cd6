"""The streamed output stage of the Anthropic Messages API (``stream: true`` on ``/v1/messages``).

Each text content block is a channel of ``channel_guard.py``: its
``content_block_delta`` events with a ``text_delta`` are released behind the
hold-back; at ``content_block_stop`` the rest is checked and released, with the
notes of ``annotate``. A ``tool_use`` block's ``input_json_delta`` pieces are held
until its ``content_block_stop``, checked as one object, and sent as one delta.
``thinking`` and other deltas pass as they are: they are signed by the provider.

A message is one answer, not a set of choices: a block closes the open content
blocks and ends the stream as a refusal, a ``message_delta`` with
``stop_reason: "refusal"`` and then ``message_stop``, without waiting for the
upstream.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from guardproxy.engine import Engine
from guardproxy.guards import GuardContext
from guardproxy.guards.base import PathPart
from guardproxy.policy.schema import GuardEntry, Policy
from guardproxy.proxy.channel_guard import ChainRan, ChannelGuard, is_error, payload_of
from guardproxy.proxy.dialects.json_paths import argument_segments
from guardproxy.proxy.holdback import HoldBackBuffer
from guardproxy.proxy.restoration import Restorer
from guardproxy.proxy.sse import SSEEvent, encode_event


class MessagesStreamGuard(ChannelGuard):
    def __init__(
        self, engine: Engine, policy: Policy, entries: Sequence[GuardEntry], context: GuardContext,
        restorer: Restorer | None = None, on_run: ChainRan | None = None,
    ) -> None:
        super().__init__(engine, policy, entries, context, restorer, on_run)
        self._answer = self._state(0)
        self._open: set[int] = set()  # blocks the client saw start and not yet stop
        self._tools: dict[int, str] = {}  # per tool_use block: its input JSON, held
        self._output_tokens = 0
        self._noted = False

    def _path(self, index: int, name: str) -> tuple[PathPart, ...]:
        return ("content", int(name), "text")

    async def process(self, event: SSEEvent) -> bytes:
        if self.ended:
            return b""
        out = await self._handle(event)
        if self._answer.blocked and not self.ended:
            return out + self._refuse()
        return out

    async def _handle(self, event: SSEEvent) -> bytes:
        """The bytes for one event; when it blocks, those to send before the refusal."""
        payload = payload_of(event)
        if payload is None:
            return event.raw
        if is_error(payload):
            out = await self.finish()  # a block found there ends the stream as a refusal instead
            return out if self._answer.blocked else out + event.raw
        kind = payload.get("type")
        index = payload.get("index")
        if kind == "content_block_start" and isinstance(index, int):
            return await self._start(payload, index, event.raw)
        if kind == "content_block_delta" and isinstance(index, int):
            return await self._delta(payload, index, event.raw)
        if kind == "content_block_stop" and isinstance(index, int):
            out = await self._stop(index)
            if self._answer.blocked:
                return b""
            self._open.discard(index)
            return out + event.raw
        if kind == "message_delta":
            out = await self._stop_all()  # blocks the upstream never stopped
            if self._answer.blocked:
                return b""
            usage = payload.get("usage")
            if isinstance(usage, dict) and isinstance(usage.get("output_tokens"), int):
                self._output_tokens = usage["output_tokens"]
            return out + event.raw
        if kind == "message_stop":
            self.ended = True
            return self.trailer() + event.raw
        if kind == "message_start":
            usage = payload.get("message", {}).get("usage") if isinstance(payload.get("message"), dict) else None
            if isinstance(usage, dict) and isinstance(usage.get("output_tokens"), int):
                self._output_tokens = usage["output_tokens"]
        return event.raw

    async def _start(self, payload: dict[str, Any], index: int, raw: bytes) -> bytes:
        block = payload.get("content_block")
        self._open.add(index)
        if not isinstance(block, dict):
            return raw
        if block.get("type") == "tool_use":
            initial = block.get("input")
            # The input streams as JSON pieces after an empty object; a non-empty one is held like them.
            self._tools[index] = "" if not initial else json.dumps(initial, ensure_ascii=False)
            if initial:
                payload["content_block"] = {**block, "input": {}}
                return encode_event("content_block_start", payload)
            return raw
        if block.get("type") == "text":
            text = block.get("text")
            self._answer.channels.setdefault(str(index), HoldBackBuffer(self._hold))
            if isinstance(text, str) and text:
                out = encode_event("content_block_start", {**payload, "content_block": {**block, "text": ""}})
                return out + await self._text(index, text)
        return raw

    async def _text(self, index: int, text: str, final: bool = False) -> bytes:
        piece = await self.feed(self._answer, str(index), text, final)
        if self._answer.blocked:
            return b""
        if final and self._answer.notes and not self._noted:
            piece += "\n\n" + "\n".join(self._answer.notes)
            self._noted = True
        if not piece:
            return b""
        return encode_event("content_block_delta", {"type": "content_block_delta", "index": index,
                                                    "delta": {"type": "text_delta", "text": piece}})

    async def _delta(self, payload: dict[str, Any], index: int, raw: bytes) -> bytes:
        delta = payload.get("delta")
        kind = delta.get("type") if isinstance(delta, dict) else None
        if kind == "text_delta" and isinstance(delta, dict):
            text = delta.get("text")
            piece = await self.feed(self._answer, str(index), text if isinstance(text, str) else "", final=False)
            if not piece:
                return b""
            return raw if piece == text else encode_event("content_block_delta", {**payload,
                                                                                  "delta": {**delta, "text": piece}})
        if kind == "input_json_delta" and isinstance(delta, dict):
            self._tools[index] = self._tools.get(index, "") + str(delta.get("partial_json") or "")
            return b""
        return raw

    async def _stop(self, index: int) -> bytes:
        """A block ends: the rest of its text, or its whole tool input, checked and sent."""
        if str(index) in self._answer.channels and index in self._open:
            return await self._text(index, "", final=True)
        if index not in self._tools:
            return b""
        arguments = self._tools.pop(index)
        holder = {"input": arguments}
        result = await self.check_whole(list(argument_segments(arguments, ("input",), "assistant")), self._answer)
        if result is None or not arguments:
            return b""
        self.rewrite(holder, result)
        return encode_event("content_block_delta", {"type": "content_block_delta", "index": index,
                                                    "delta": {"type": "input_json_delta",
                                                              "partial_json": holder["input"]}})

    async def _stop_all(self) -> bytes:
        out = b""
        for index in sorted(self._open):
            out += await self._stop(index)
            if self._answer.blocked:
                return b""
            out += encode_event("content_block_stop", {"type": "content_block_stop", "index": index})
        self._open.clear()
        return out

    def _refuse(self) -> bytes:
        """Close the open blocks and end the message as a refusal."""
        out = b"".join(encode_event("content_block_stop", {"type": "content_block_stop", "index": index})
                       for index in sorted(self._open))
        self._open.clear()
        out += encode_event("message_delta", {"type": "message_delta",
                                              "delta": {"stop_reason": "refusal", "stop_sequence": None},
                                              "usage": {"output_tokens": self._output_tokens}})
        self.ended = True
        return out + self.trailer() + encode_event("message_stop", {"type": "message_stop"})

    async def finish(self) -> bytes:
        """The upstream ended without ``message_stop`` (or with an error): release what the open blocks hold."""
        if self.ended:
            return b""
        out = await self._stop_all()
        if self._answer.blocked:
            return self._refuse()
        self.ended = True
        return out + self.trailer()
