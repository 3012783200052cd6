"""The output stage for streamed answers.

Text is released to the client as it arrives, except for the last
``hold_back_chars`` characters of each choice: the guards always see that much
text beyond what is about to be released, so a match that spans two chunks is
caught before any of it leaves. Releases snap back to whitespace so a word is
never split between two checks. Tool-call arguments are held whole until their
choice finishes, then checked as one, since a half-sent call cannot be recalled.

Only the chain's entries that can change the text (enforced ``block`` and
``redact``) gate releases. They check the first release as soon as the
hold-back allows, then only once another ``hold_back_chars`` characters (at
most 64) can be released, or the choice ends: a chunk arriving in between waits
in the buffer instead of costing a chain run, and what arrived meanwhile is
checked together.

A block stops forwarding and ends the stream with one chunk whose
``finish_reason`` is ``content_filter``, then ``[DONE]``.

The other entries (flag, annotate, monitor) never delay the stream: they check
each completed sentence in the background, and their results are awaited when
the choice finishes, so ``annotate`` notes go out before the final chunk. A
chain with no gating entries holds nothing back. In a chain that does gate,
a background guard that fails with ``on_error: block`` ends the stream as soon
as its failure is seen, at the latest before the choice's final chunk.
"""

from __future__ import annotations

import asyncio
import copy
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from guardproxy.engine.core import VERDICT_RANK, ChainResult, Decision, Engine, GuardFailure, Verdict, entry_names
from guardproxy.engine.redaction import Redaction
from guardproxy.guards import GuardContext, Segment
from guardproxy.policy.schema import GuardEntry, Policy
from guardproxy.proxy.extraction import apply_texts, message_segments
from guardproxy.proxy.restoration import Restorer
from guardproxy.proxy.sse import DONE, SSEEvent, comment, encode_data

_WHITESPACE = re.compile(r"\s")
# After the first release, a gating check waits until this much (or the hold-back, if smaller) can
# be released: fewer chain runs, while a long hold-back does not make releases wait twice as long.
_CHECK_STEP_MAX = 64
_SENTENCE_END = re.compile(r"[.!?\u3002][\"')\]]*\s+|\n\s*")


@dataclass
class HoldBackBuffer:
    """One choice's streamed text: everything received, and how much has been released."""

    hold_back: int
    text: str = ""
    released: int = 0
    tool_calls: dict[int, dict[str, Any]] = field(default_factory=dict)
    finished: bool = False
    checked: int = 0  # text up to here has been handed to the background guards
    decided: int = 0  # the end of the furthest span a check has decided; later windows start no earlier
    checks: list[asyncio.Task[ChainResult]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def feed(self, piece: str) -> None:
        self.text += piece

    def cut(self, final: bool) -> int | None:
        """Where the next release may end, or None if nothing can be released yet."""
        if final:
            return len(self.text) if len(self.text) > self.released else None
        limit = len(self.text) - self.hold_back
        if limit <= self.released:
            return None
        for position in range(limit - 1, self.released - 1, -1):
            if _WHITESPACE.match(self.text, position):
                return position + 1
        # No whitespace in reach (a long token, or a script without spaces).
        return limit if limit - self.released >= max(self.hold_back, 1) * 4 else None

    def add_tool_delta(self, delta: dict[str, Any]) -> None:
        index = delta.get("index", 0)
        call = self.tool_calls.setdefault(index, {"index": index, "function": {"arguments": ""}})
        for key in ("id", "type"):
            if key in delta:
                call[key] = delta[key]
        function = delta.get("function") or {}
        if "name" in function:
            call["function"]["name"] = function["name"]
        call["function"]["arguments"] += function.get("arguments") or ""


class StreamGuard:
    """Applies an output chain to an SSE stream of ``chat.completion.chunk`` or
    streamed ``text_completion`` events."""

    def __init__(
        self,
        engine: Engine,
        policy: Policy,
        entries: Sequence[GuardEntry],
        context: GuardContext,
        endpoint: str,
        restorer: Restorer | None = None,
    ) -> None:
        self._restorer = restorer or Restorer({})
        self._engine = engine
        self._policy = policy
        self._entries = entries
        self._context = context
        self._chat = endpoint == "chat"
        self._buffers: dict[int, HoldBackBuffer] = {}
        self._envelope: dict[str, Any] = {}
        self.decisions: list[Decision] = []
        self.failures: list[GuardFailure] = []
        self.verdict: Verdict = "pass"
        self.blocked = False
        self.rounds = 0  # gating chain runs
        names = entry_names(entries)
        gates = [entry.action in ("block", "redact") and (entry.mode or policy.defaults.mode) == "enforce"
                 for entry in entries]
        self._gating = [(e, n) for e, n, g in zip(entries, names, gates, strict=True) if g]
        self._watching = [(e, n) for e, n, g in zip(entries, names, gates, strict=True) if not g]
        self._hold = policy.stream.hold_back_chars if self._gating else 0
        self._step = min(self._hold, _CHECK_STEP_MAX)

    def _raise_verdict(self, verdict: Verdict) -> None:
        if VERDICT_RANK[verdict] > VERDICT_RANK[self.verdict]:
            self.verdict = verdict

    def _buffer(self, index: int) -> HoldBackBuffer:
        if index not in self._buffers:
            self._buffers[index] = HoldBackBuffer(self._hold)
        return self._buffers[index]

    async def _run(self, entries: list[tuple[GuardEntry, str]], segments: list[Segment]) -> ChainResult:
        return await self._engine.run(self._policy, [e for e, _ in entries], segments, self._context,
                                      remember=False, names=[n for _, n in entries])

    def _path(self, index: int) -> tuple[str | int, ...]:
        return ("choices", index, "delta", "content") if self._chat else ("choices", index, "text")

    async def process(self, event: SSEEvent) -> bytes:
        """Bytes to send the client for one upstream event (possibly none)."""
        if self.blocked:
            return b""
        if event.data == "[DONE]":
            flushed = await self._flush_unfinished()
            return flushed if self.blocked else flushed + self.trailer() + DONE
        chunk = event.json()
        if not isinstance(chunk, dict) or not isinstance(chunk.get("choices"), list):
            return event.raw
        self._envelope = {k: v for k, v in chunk.items() if k not in ("choices", "usage")}
        out = b""
        kept: list[Any] = []
        for choice in chunk["choices"]:
            if not isinstance(choice, dict):
                kept.append(choice)
                continue
            before, choice = await self._process_choice(choice)
            if self.blocked:
                return out + before + self._block_ending()
            out += before
            if choice is not None:
                kept.append(choice)
        if kept or chunk.get("usage") or not chunk["choices"]:
            if kept == chunk["choices"]:
                return out + event.raw
            chunk["choices"] = kept
            out += encode_data(chunk)
        return out

    async def _process_choice(self, choice: dict[str, Any]) -> tuple[bytes, dict[str, Any] | None]:
        """Feed one choice's delta. Returns the events to send before it, and the
        choice to send now: the original when nothing changed, a rewritten copy,
        or None when it carries nothing yet (its text is being held back)."""
        original = choice
        choice = copy.deepcopy(choice)
        buffer = self._buffer(choice.get("index", 0))
        holder = choice.get("delta") if self._chat else choice
        if not isinstance(holder, dict):
            return b"", original
        key = "content" if self._chat else "text"
        piece = holder.get(key)
        if isinstance(piece, str):
            buffer.feed(piece)
        tool_deltas = holder.pop("tool_calls", None) if self._chat else None
        for delta in tool_deltas if isinstance(tool_deltas, list) else []:
            if isinstance(delta, dict):
                buffer.add_tool_delta(delta)
        final = choice.get("finish_reason") is not None
        index = choice.get("index", 0)
        self._watch(index, buffer, final)
        released = await self._release(index, buffer, final)
        before = b""
        if final and not self.blocked:
            await self._settle_checks(buffer)
            if not self.blocked:
                buffer.finished = True
                released += self._notes_suffix(buffer)
                before = await self._release_tool_calls(index, buffer)
        if self.blocked:
            return b"", None
        if not released and not final and (not self._chat or all(k == key for k in holder)):
            return before, None
        if not tool_deltas and (released == piece or (piece is None and not released)):
            return before, original
        if isinstance(piece, str) or released:
            holder[key] = released
        return before, choice

    async def _release(self, index: int, buffer: HoldBackBuffer, final: bool) -> str:
        """Check and release the next part of a choice's text; '' if none is due."""
        self._take_finished_checks(buffer)
        cut = buffer.cut(final)
        if cut is None or self.blocked:
            return ""
        if not self._gating:
            return self._release_checked(buffer, cut, final, [], buffer.released)
        if not final and buffer.released and cut - buffer.released < self._step:
            return ""  # not due: wait until a window's worth can go, then check it all at once
        self.rounds += 1
        # Not inside a value already decided: a window that began mid-value could see a longer,
        # invalid number there (a card's tail and the next card's head) and miss the next value.
        window_start = max(0, buffer.released - self._hold, buffer.decided)
        window = buffer.text[window_start:]
        result = await self._run(self._gating, [Segment(window, self._path(index), "assistant")])
        self.failures.extend(result.failures)
        redactions: list[Redaction] = []
        decided_until = buffer.released
        for d in result.decisions:
            if d.start is None or d.end is None:
                start, end = buffer.released, cut
            else:
                start, end = d.start + window_start, d.end + window_start
                if end <= buffer.released or (start >= cut and not final):
                    continue  # already handled, or belongs to a later release
                start = max(start, buffer.released)
                cut = max(cut, end)
                decided_until = max(decided_until, end)
                buffer.decided = max(buffer.decided, end)
            self.decisions.append(d)
            if d.segment < 0 or not d.enforced:
                self._raise_verdict("flagged")
                if d.segment < 0 and d.action == "block":
                    self.blocked = True
            elif d.action == "block":
                self.blocked = True
            elif d.action == "redact":
                redactions.append(Redaction(start - buffer.released, end - buffer.released,
                                            d.replacement or f"[{d.label}]"))
                self._raise_verdict("redacted")
            else:
                self._raise_verdict("flagged")
        if self.blocked:
            self._raise_verdict("blocked")
            return ""
        return self._release_checked(buffer, cut, final, redactions, decided_until)

    def _release_checked(
        self, buffer: HoldBackBuffer, cut: int, final: bool, redactions: list[Redaction], decided_until: int
    ) -> str:
        """Release up to ``cut`` with the guards' redactions and restored placeholders."""
        if not final:
            cut = self._restorer.safe_cut(buffer.text, buffer.released, cut, decided_until)
        piece = self._restorer.apply(buffer.text[buffer.released : cut], redactions)
        buffer.released = cut
        return piece

    def _watch(self, index: int, buffer: HoldBackBuffer, final: bool) -> None:
        """Hand each completed sentence (and, at the end, the rest) to the background guards."""
        if not self._watching:
            return
        ends = [m.end() for m in _SENTENCE_END.finditer(buffer.text, buffer.checked)]
        until = len(buffer.text) if final else (ends[-1] if ends else buffer.checked)
        if until > buffer.checked and buffer.text[buffer.checked : until].strip():
            segment = Segment(buffer.text[buffer.checked : until], self._path(index), "assistant")
            buffer.checks.append(asyncio.create_task(self._run(self._watching, [segment])))
        buffer.checked = max(buffer.checked, until)

    def _take_check(self, buffer: HoldBackBuffer, result: ChainResult) -> None:
        self.decisions.extend(result.decisions)
        self.failures.extend(result.failures)
        buffer.notes.extend(n for n in result.notes if n not in buffer.notes)
        if result.decisions or result.failures:
            self._raise_verdict("flagged")
        if self._gating and any(f.blocked for f in result.failures):
            self.blocked = True  # fails closed, as it would have had it gated the release

    def _take_finished_checks(self, buffer: HoldBackBuffer) -> None:
        for task in [t for t in buffer.checks if t.done()]:
            buffer.checks.remove(task)
            self._take_check(buffer, task.result())

    async def _settle_checks(self, buffer: HoldBackBuffer) -> None:
        for result in await asyncio.gather(*buffer.checks):
            self._take_check(buffer, result)
        buffer.checks.clear()

    def _notes_suffix(self, buffer: HoldBackBuffer) -> str:
        return "\n\n" + "\n".join(buffer.notes) if buffer.notes else ""

    async def _release_tool_calls(self, index: int, buffer: HoldBackBuffer) -> bytes:
        if not buffer.tool_calls:
            return b""
        calls = [buffer.tool_calls[i] for i in sorted(buffer.tool_calls)]
        message = {"role": "assistant", "tool_calls": calls}
        segments = list(message_segments(message, ()))
        result = await self._engine.run(self._policy, self._entries, segments, self._context)
        self.decisions.extend(result.decisions)
        self.failures.extend(result.failures)
        self._raise_verdict(result.verdict)
        if result.verdict == "blocked":
            self.blocked = True
            return b""
        self._restorer.restore_result(result)
        apply_texts(message, result.rewrites())
        delta = {"tool_calls": message["tool_calls"]}
        return encode_data({**self._envelope, "choices": [
            {"index": index, "delta": delta, "logprobs": None, "finish_reason": None}
        ]})

    async def _flush_unfinished(self) -> bytes:
        out = b""
        for index, buffer in sorted(self._buffers.items()):
            if buffer.finished:
                continue
            self._watch(index, buffer, final=True)
            released = await self._release(index, buffer, final=True)
            if not self.blocked:
                await self._settle_checks(buffer)
            if self.blocked:
                return self._block_ending()
            out += await self._release_tool_calls(index, buffer)
            if self.blocked:
                return self._block_ending()
            buffer.finished = True
            released += self._notes_suffix(buffer)
            if released:
                body = {"delta": {"content": released}} if self._chat else {"text": released}
                out += encode_data({**self._envelope, "choices": [
                    {"index": index, **body, "logprobs": None, "finish_reason": None}
                ]})
        return out

    async def finish(self) -> bytes:
        """The upstream ended without ``[DONE]``: release what is held."""
        if self.blocked:
            return b""
        return await self._flush_unfinished()

    def _block_ending(self) -> bytes:
        """The final chunk after a block: ``content_filter`` for every unfinished choice."""
        self._raise_verdict("blocked")
        indexes = sorted(i for i, b in self._buffers.items() if not b.finished) or [0]
        choices = []
        for index in indexes:
            body: dict[str, Any] = {"delta": {}} if self._chat else {"text": ""}
            choices.append({"index": index, **body, "logprobs": None, "finish_reason": "content_filter"})
        return encode_data({**self._envelope, "choices": choices}) + self.trailer() + DONE

    def cancel_checks(self) -> None:
        """The stream ended early (disconnect, error): drop background checks still running."""
        for buffer in self._buffers.values():
            for task in buffer.checks:
                task.cancel()

    def trailer(self) -> bytes:
        """An SSE comment with the stream's output verdict; clients ignore comments."""
        return comment(f"guardproxy verdict={self.verdict}")
