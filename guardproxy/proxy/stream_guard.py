"""The output stage for streamed answers of the choice-based APIs (chat and text
completions), driven by the dialect's ``ChoiceStreamShape``.

Every text field of every choice is its own channel (``holdback.py``), released
as it arrives except for the last ``hold_back_chars`` characters: the guards
always see that much text beyond what is about to be released, so a match that
spans two chunks is caught before any of it leaves. A finding whose span reaches
into the held text could still grow, so it is not settled, and nothing from its
start on is released, until more text arrives or the choice ends: a value longer
than the hold-back is held whole until it stops growing. Call
arguments are held whole until their choice finishes, then checked as one.

Only the chain's entries that can change the text (enforced ``block`` and
``redact``) gate releases. They check the first release as soon as the
hold-back allows, then only once another ``hold_back_chars`` characters (at
most 64) can be released, or the choice ends.

Each choice has its own outcome: a block in choice k ends choice k with
``finish_reason: content_filter`` and drops the rest of it; the other choices go
on. Once every choice the request asked for has ended and one was blocked, the
stream ends with ``[DONE]`` without waiting for the upstream.

The other entries (flag, annotate, monitor) never delay the stream: they check
each completed sentence in the background, and their results are awaited when
the choice finishes, so ``annotate`` notes go out before the final chunk. In a
chain that gates, a background guard that fails with ``on_error: block`` ends
its choice as soon as its failure is seen, at the latest before its final chunk.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import Any

from guardproxy.engine import ChainResult, Decision, Engine, GuardFailure, Verdict, entry_names, verdict_of
from guardproxy.engine.redaction import Redaction
from guardproxy.guards import GuardContext, Segment
from guardproxy.guards.sentences import completed_sentence_ends
from guardproxy.policy.schema import GuardEntry, Policy
from guardproxy.proxy.dialects import ChoiceStreamShape, Dialect, apply_texts
from guardproxy.proxy.holdback import ChoiceState, HoldBackBuffer, shortest_match
from guardproxy.proxy.restoration import Restorer
from guardproxy.proxy.sse import DONE, SSEEvent, comment, encode_data

# After the first release, a gating check waits until this much (or the hold-back, if smaller) can
# be released: fewer chain runs, while a long hold-back does not make releases wait twice as long.
_CHECK_STEP_MAX = 64
ChainRan = Callable[[ChainResult, int], None]


class StreamGuard:
    def __init__(
        self, engine: Engine, policy: Policy, entries: Sequence[GuardEntry], context: GuardContext,
        dialect: Dialect, restorer: Restorer | None = None, choices: int = 1, on_run: ChainRan | None = None,
    ) -> None:
        assert dialect.stream_shape is not None, "only choice-based dialects stream through StreamGuard"
        self._shape: ChoiceStreamShape = dialect.stream_shape
        self._dialect = dialect
        self._restorer = restorer or Restorer({})
        self._engine = engine
        self._policy = policy
        self._entries = entries
        self._context = context
        self._expected = choices
        self._on_run = on_run
        self._choices: dict[int, ChoiceState] = {}
        self._envelope: dict[str, Any] = {}
        self.decisions: list[Decision] = []
        self.failures: list[GuardFailure] = []
        self.ended = False  # the stream has been ended here ([DONE] sent): stop reading the upstream
        self.rounds = 0  # gating chain runs
        names = entry_names(entries)
        gates = [entry.action in ("block", "redact") and (entry.mode or policy.defaults.mode) == "enforce"
                 for entry in entries]
        self._gating = [(e, n) for e, n, g in zip(entries, names, gates, strict=True) if g]
        self._watching = [(e, n) for e, n, g in zip(entries, names, gates, strict=True) if not g]
        # At least the shortest text a gating guard's pattern can match (guards that can tell say so).
        shortest = max((shortest_match(engine, e) for e, _ in self._gating), default=0)
        self._hold = max(policy.stream.hold_back_chars, shortest) if self._gating else 0
        self._step = min(self._hold, _CHECK_STEP_MAX)

    @property
    def verdict(self) -> Verdict:
        return verdict_of(self.decisions, self.failures)

    @property
    def blocked(self) -> bool:
        return any(state.blocked for state in self._choices.values())

    def _state(self, index: int) -> ChoiceState:
        state = self._choices.get(index)
        if state is None:
            state = self._choices[index] = ChoiceState(index, calls=self._dialect.call_buffer())
        return state

    async def _run(self, entries: Sequence[tuple[GuardEntry, str]], segments: list[Segment],
                   remember: bool = False) -> ChainResult:
        started_ns = time.time_ns()
        result = await self._engine.run(self._policy, [e for e, _ in entries], segments, self._context,
                                        remember=remember, names=[n for _, n in entries])
        if self._on_run is not None:
            self._on_run(result, started_ns)
        return result

    async def process(self, event: SSEEvent) -> bytes:
        """Bytes to send the client for one upstream event (possibly none)."""
        if self.ended:
            return b""
        if event.data == "[DONE]":
            return await self._end()
        chunk = event.json()
        if not isinstance(chunk, dict) or not isinstance(chunk.get("choices"), list):
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
        state = self._state(choice.get("index", 0))
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

    async def _release(self, state: ChoiceState, name: str, buffer: HoldBackBuffer, final: bool) -> str:
        """Check and release the next part of a channel's text; '' if none is due."""
        self._take_finished_checks(state, buffer)
        cut = buffer.cut(final)
        if cut is None or state.blocked:
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
        result = await self._run(self._gating, [Segment(window, self._shape.path(state.index, name), "assistant")])
        self.failures.extend(result.failures)
        wholes, spans = self._place(result.decisions, window_start, buffer, cut, final)
        for d in [*wholes, *(d for _, _, d in spans)]:
            if d.blocks:  # a block needs no settling: however the match would grow, it blocks
                self._decide(state, d, 0, 0, [])
                return ""
        # A span that reaches into the held text (the last hold_back_chars) could still grow, even when
        # it ends before the text does (a pattern's next group may be half arrived): nothing from its
        # start on is released, nor from the start of a span overlapping it, until more text comes or
        # the choice ends.
        hold_from = len(buffer.text) + 1
        if not final:
            held = len(buffer.text) - self._hold
            hold_from = min((start for start, end, _ in spans if end > held), default=hold_from)
            while any(start < hold_from < end for start, end, _ in spans):
                hold_from = min(start for start, end, _ in spans if start < hold_from < end)
        redactions: list[Redaction] = []
        decided_until = buffer.released
        for start, end, d in spans:
            if end > hold_from:
                continue
            cut = max(cut, end)
            decided_until = max(decided_until, end)
            buffer.decided = max(buffer.decided, end)
            self._decide(state, d, start - buffer.released, end - buffer.released, redactions)
        cut = min(cut, hold_from)
        for d in wholes:
            self._decide(state, d, 0, cut - buffer.released, redactions)
        if state.blocked or cut <= buffer.released:
            return ""
        return self._release_checked(buffer, cut, final, redactions, decided_until)

    @staticmethod
    def _place(decisions: Sequence[Decision], window_start: int, buffer: HoldBackBuffer, cut: int,
               final: bool) -> tuple[list[Decision], list[tuple[int, int, Decision]]]:
        """The decisions of a release's check: those about the whole window, and the spans
        (in the channel's offsets, clipped to what is not yet released) that concern this release."""
        wholes: list[Decision] = []
        spans: list[tuple[int, int, Decision]] = []
        for d in decisions:
            if d.start is None or d.end is None:
                wholes.append(d)
                continue
            start, end = d.start + window_start, d.end + window_start
            if end <= buffer.released or (start >= cut and not final):
                continue  # already handled, or belongs to a later release
            spans.append((max(start, buffer.released), end, d))
        return wholes, spans

    def _decide(self, state: ChoiceState, d: Decision, start: int, end: int, redactions: list[Redaction]) -> None:
        """Settle one decision of a release (offsets relative to the release's start)."""
        self.decisions.append(d)
        if d.blocks:
            state.blocked = True
        elif d.redacts and d.segment >= 0:
            redactions.append(Redaction(start, end, d.replacement or f"[{d.label}]"))

    def _release_checked(
        self, buffer: HoldBackBuffer, cut: int, final: bool, redactions: list[Redaction], decided_until: int
    ) -> str:
        """Release up to ``cut`` with the guards' redactions and restored placeholders."""
        if not final:
            cut = self._restorer.safe_cut(buffer.text, buffer.released, cut, decided_until)
        piece = self._restorer.apply(buffer.text[buffer.released : cut], redactions)
        buffer.released = max(buffer.released, cut)
        return piece

    def _watch(self, state: ChoiceState, name: str, buffer: HoldBackBuffer, final: bool) -> None:
        """Hand each completed sentence (and, at the end, the rest) to the background guards."""
        if not self._watching:
            return
        ends = completed_sentence_ends(buffer.text, buffer.checked)
        until = len(buffer.text) if final else (ends[-1] if ends else buffer.checked)
        if until > buffer.checked and buffer.text[buffer.checked : until].strip():
            segment = Segment(buffer.text[buffer.checked : until], self._shape.path(state.index, name), "assistant")
            buffer.checks.append(asyncio.create_task(self._run(self._watching, [segment])))
        buffer.checked = max(buffer.checked, until)

    def _take_check(self, state: ChoiceState, result: ChainResult) -> None:
        # A failing guard's block stands only where the chain gates: elsewhere the text has already gone.
        self.decisions.extend(d for d in result.decisions if self._gating or not (d.segment < 0 and d.blocks))
        self.failures.extend(result.failures)
        state.notes.extend(n for n in result.notes if n not in state.notes)
        if self._gating and any(f.blocked for f in result.failures):
            state.blocked = True  # fails closed, as it would have had it gated the release

    def _take_finished_checks(self, state: ChoiceState, buffer: HoldBackBuffer) -> None:
        for task in [t for t in buffer.checks if t.done()]:
            buffer.checks.remove(task)
            self._take_check(state, task.result())

    async def _settle_checks(self, state: ChoiceState, buffer: HoldBackBuffer) -> None:
        for result in await asyncio.gather(*buffer.checks):
            self._take_check(state, result)
        buffer.checks.clear()

    async def _release_calls(self, state: ChoiceState) -> bytes:
        calls = state.calls
        if not calls:
            return b""
        assert calls is not None
        message = calls.message()
        result = await self._run(list(zip(self._entries, entry_names(self._entries), strict=True)),
                                 calls.segments(message), remember=True)
        self.decisions.extend(result.decisions)
        self.failures.extend(result.failures)
        if result.verdict == "blocked":
            state.blocked = True
            return b""
        self._restorer.restore_result(result)
        apply_texts(message, result.rewrites())
        choice = self._shape.empty_choice(state.index, None)
        choice[self._shape.holder or ""] = calls.delta(message)
        return encode_data({**self._envelope, "choices": [choice]})

    def _end_blocked(self, state: ChoiceState) -> dict[str, Any]:
        """The choice's last entry after its block."""
        state.blocked = state.finished = True
        return self._shape.empty_choice(state.index, "content_filter")

    async def _end(self) -> bytes:
        """``[DONE]``, or the upstream's end without it: release what every unfinished choice holds."""
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
        return out + self.trailer() + DONE

    async def finish(self) -> bytes:
        """The upstream ended without ``[DONE]``: release what is held."""
        return b"" if self.ended else await self._end()

    def cancel_checks(self) -> None:
        """The stream ended early (disconnect, error): drop background checks still running."""
        for state in self._choices.values():
            for buffer in state.channels.values():
                for task in buffer.checks:
                    task.cancel()

    def trailer(self) -> bytes:
        """An SSE comment with the stream's output verdict; clients ignore comments."""
        return comment(f"guardproxy verdict={self.verdict}")
