"""The streamed output stage of the choice-based APIs (chat and text completions),
driven by the dialect's ``ChoiceStreamShape``; the channels, hold-back and checks
are ``channel_guard.py``'s.

Every text field of every choice is its own channel. Call arguments are held
whole until their choice finishes, then checked as one.

Each choice has its own outcome: a block in choice k ends choice k with
``finish_reason: content_filter`` and drops the rest of it; the other choices go
on. Once every choice the request asked for has ended and one was blocked, the
stream ends with ``[DONE]`` without waiting for the upstream. ``annotate`` notes
go out on a choice's first text field before its final chunk. Only the upstream's
``[DONE]`` (or a block) ends the stream with ``[DONE]``: when the upstream stops
without it, ``finish`` releases what is held and the relay adds an error event.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from guardproxy.engine import Engine
from guardproxy.guards import GuardContext
from guardproxy.guards.base import PathPart
from guardproxy.policy.schema import GuardEntry, Policy
from guardproxy.proxy.channel_guard import ChainRan, ChannelGuard, is_error, payload_of
from guardproxy.proxy.dialects import ChoiceStreamShape, Dialect
from guardproxy.proxy.holdback import ChoiceState, HoldBackBuffer
from guardproxy.proxy.restoration import Restorer
from guardproxy.proxy.sse import DONE, SSEEvent, encode_data

__all__ = ["HoldBackBuffer", "StreamGuard"]


class StreamGuard(ChannelGuard):
    def __init__(
        self, engine: Engine, policy: Policy, entries: Sequence[GuardEntry], context: GuardContext,
        dialect: Dialect, restorer: Restorer | None = None, choices: int = 1, on_run: ChainRan | None = None,
    ) -> None:
        assert dialect.stream_shape is not None, "only choice-based dialects stream through StreamGuard"
        super().__init__(engine, policy, entries, context, restorer, on_run)
        self._shape: ChoiceStreamShape = dialect.stream_shape
        self._dialect = dialect
        self._expected = choices
        self._envelope: dict[str, Any] = {}

    def _path(self, index: int, name: str) -> tuple[PathPart, ...]:
        return self._shape.path(index, name)

    def _choice(self, index: int) -> ChoiceState:
        return self._state(index, self._dialect.call_buffer() if index not in self._choices else None)

    async def process(self, event: SSEEvent) -> bytes:
        """Bytes to send the client for one upstream event (possibly none)."""
        if self.ended:
            return b""
        if event.data is not None and event.data.strip() == "[DONE]":
            return await self._end() + DONE
        chunk = payload_of(event)
        if chunk is not None and is_error(chunk):
            return await self._end() + event.raw
        if chunk is None or not isinstance(chunk.get("choices"), list):
            return event.raw
        self._envelope = {k: v for k, v in chunk.items() if k not in ("choices", "usage")}
        out = b""
        kept: list[Any] = []
        for choice in chunk["choices"]:
            if not isinstance(choice, dict) or not isinstance(choice.get("index", 0), int):
                kept.append(choice)
                continue
            before, sent = await self._process_choice(choice)
            out += before
            if sent is not None:
                kept.append(sent)
        if kept or chunk.get("usage") or not chunk["choices"]:
            if len(kept) == len(chunk["choices"]) and all(a is b for a, b in zip(kept, chunk["choices"],
                                                                                 strict=True)):
                out += event.raw
            else:
                chunk["choices"] = kept
                out += encode_data(chunk)
        if self.blocked and self._all_ended():
            out += self.trailer() + DONE
            self.ended = True
        return out

    def _all_ended(self) -> bool:
        indexes = set(range(self._expected)) | set(self._choices)
        return all(i in self._choices and self._choices[i].finished for i in indexes)

    async def _process_choice(self, choice: dict[str, Any]) -> tuple[bytes, dict[str, Any] | None]:
        """Feed one choice's delta. Returns the events to send before it, and the
        choice to send now: the original when nothing changed, a rewritten copy,
        or None when it carries nothing yet (its text is being held back)."""
        state = self._choice(choice.get("index", 0))
        if state.finished:
            return b"", None  # after its block (or its end), a choice is dropped
        shape = self._shape
        original = choice
        choice = dict(choice)
        if shape.holder is not None:
            holder = choice.get(shape.holder)
            if not isinstance(holder, dict):
                return b"", original
            holder = choice[shape.holder] = dict(holder)
        else:
            holder = choice
        pieces = {f: holder[f] for f in shape.text_fields if isinstance(holder.get(f), str)}
        for name, piece in pieces.items():
            state.channels.setdefault(name, HoldBackBuffer(self._hold)).feed(piece)
        had_calls = state.calls.take(holder) if state.calls is not None else False
        final = choice.get("finish_reason") is not None
        released: dict[str, str] = {}
        for name, buffer in state.channels.items():
            self._watch(state, name, buffer, final)
            piece = await self._release(state, name, buffer, final)
            if state.blocked:
                return b"", self._end_blocked(state)
            if piece:
                released[name] = piece
        before = b""
        if final:
            before = await self._finish_choice(state, released)
            if state.blocked:
                return b"", self._end_blocked(state)
        extra = [k for k in holder if k not in shape.text_fields]
        if shape.holder is None:
            extra = [k for k in extra if k not in ("index", "logprobs", "finish_reason")]
        if not released and not final and not extra:
            return before, None
        if not had_calls and all(released.get(f, "") == p for f, p in pieces.items()) and \
                set(released) <= set(pieces):
            return before, original
        for name in {*pieces, *released}:
            holder[name] = released.get(name, "")
        return before, choice

    async def _finish_choice(self, state: ChoiceState, released: dict[str, str]) -> bytes:
        """The choice's last text is out: settle its background checks, add its notes,
        and check and release its calls. Returns the calls' event, to go before it."""
        for buffer in state.channels.values():
            await self._settle_checks(state, buffer)
            if state.blocked:
                return b""
        if state.notes:
            first = self._shape.text_fields[0]
            released[first] = released.get(first, "") + "\n\n" + "\n".join(state.notes)
        out = await self._release_calls(state)
        if not state.blocked:
            state.finished = True
        return out

    async def _release_calls(self, state: ChoiceState) -> bytes:
        calls = state.calls
        if not calls:
            return b""
        assert calls is not None
        message = calls.message()
        result = await self.check_whole(calls.segments(message), state)
        if result is None:
            return b""
        self.rewrite(message, result)
        choice = self._shape.empty_choice(state.index, None)
        choice[self._shape.holder or ""] = calls.delta(message)
        return encode_data({**self._envelope, "choices": [choice]})

    def _end_blocked(self, state: ChoiceState) -> dict[str, Any]:
        """The choice's last entry after its block."""
        state.blocked = state.finished = True
        return self._shape.empty_choice(state.index, "content_filter")

    async def _end(self) -> bytes:
        """The upstream's end (``[DONE]``, an error, or none): release what every unfinished choice holds."""
        out = b""
        for index, state in sorted(self._choices.items()):
            if state.finished:
                continue
            released: dict[str, str] = {}
            for name, buffer in state.channels.items():
                self._watch(state, name, buffer, final=True)
                piece = await self._release(state, name, buffer, final=True)
                if piece:
                    released[name] = piece
                if state.blocked:
                    break
            if not state.blocked:
                out += await self._finish_choice(state, released)
            choice = self._shape.empty_choice(index, None)
            if state.blocked:
                choice = self._end_blocked(state)
            elif released:
                holder = choice[self._shape.holder] if self._shape.holder else choice
                holder.update(released)
            else:
                continue
            out += encode_data({**self._envelope, "choices": [choice]})
        self.ended = True
        return out + self.trailer()

    async def finish(self) -> bytes:
        """The upstream ended without ``[DONE]``: release what is held, without ``[DONE]``."""
        return b"" if self.ended else await self._end()
