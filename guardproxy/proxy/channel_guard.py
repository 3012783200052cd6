"""The part of the streamed output stage that every API shares: text channels
released behind a hold-back, gating checks, background checks, and whole checks
of held calls. ``stream_guard.py`` (chat and text completions), ``responses_stream.py``
and ``messages_stream.py`` each read their API's events into these channels and
write the released text back as that API's events.

A channel is one text field of one choice (or output item, or content block),
released as it arrives except for the last ``hold_back_chars`` characters: the guards
always see that much text beyond what is about to be released, so a match that
spans two chunks is caught before any of it leaves. A finding whose span reaches
into the held text could still grow, so it is not settled, and nothing from its
start on is released, until more text arrives or the channel ends: a value longer
than the hold-back is held whole until it stops growing.

Only the chain's entries that can change the text (enforced ``block`` and
``redact``) gate releases. They check the first release as soon as the
hold-back allows, then only once another ``hold_back_chars`` characters (at
most 64) can be released, or the channel ends. The other entries (flag,
annotate, monitor) never delay the stream: they check each completed sentence in
the background, and their results are awaited when the channel ends, so
``annotate`` notes go out before it closes. In a chain that gates, a background
guard that fails with ``on_error: block`` ends its choice as soon as its failure
is seen, at the latest before its final chunk.

Calls (tool-call arguments) are held whole until they end, then checked as one
by the whole chain (``check_whole``): a half-sent call cannot be recalled.

Every event's data must be a JSON object (``payload_of``): one that is not
(bar ``[DONE]``, comments and empty keep-alives) raises ``MalformedEvent`` and is
never relayed, since the guards could not read its text. An ``error`` event from
the upstream ends the stream: what the channels hold is released, then the error.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import Any

from guardproxy.engine import ChainResult, Decision, Engine, GuardFailure, Verdict, entry_names, verdict_of
from guardproxy.engine.redaction import Redaction
from guardproxy.guards import GuardContext, Segment
from guardproxy.guards.base import PathPart
from guardproxy.guards.sentences import completed_sentence_ends
from guardproxy.policy.schema import GuardEntry, Policy
from guardproxy.proxy.dialects import CallBuffer, apply_texts
from guardproxy.proxy.holdback import ChoiceState, HoldBackBuffer, shortest_match
from guardproxy.proxy.restoration import Restorer
from guardproxy.proxy.sse import SSEEvent, comment
from guardproxy.proxy.stream_end import ERROR_EVENT

# After the first release, a gating check waits until this much (or the hold-back, if smaller) can
# be released: fewer chain runs, while a long hold-back does not make releases wait twice as long.
_CHECK_STEP_MAX = 64
ChainRan = Callable[[ChainResult, int], None]


class MalformedEvent(ValueError):
    """An upstream stream event the guards cannot read; the stream ends with an error."""


def payload_of(event: SSEEvent) -> dict[str, Any] | None:
    """An event's data as a JSON object; None for a comment, an empty keep-alive or ``[DONE]``."""
    if not event.data or event.data.strip() == "[DONE]":
        return None
    payload = event.json()
    if not isinstance(payload, dict):
        raise MalformedEvent(f"an event whose data is not a JSON object ({len(event.data)} characters)")
    return payload


def is_error(payload: dict[str, Any]) -> bool:
    """The upstream's own error event: ``type: error`` (typed streams) or an ``error`` object (chat)."""
    return payload.get("type") == ERROR_EVENT or (isinstance(payload.get("error"), dict)
                                                  and "choices" not in payload)


class ChannelGuard:
    """Subclasses read events (``process``), end the stream (``finish``) and say where
    a channel's text lives (``_path``)."""

    def __init__(
        self, engine: Engine, policy: Policy, entries: Sequence[GuardEntry], context: GuardContext,
        restorer: Restorer | None = None, on_run: ChainRan | None = None,
    ) -> None:
        self._restorer = restorer or Restorer({})
        self._engine = engine
        self._policy = policy
        self._entries = entries
        self._context = context
        self._on_run = on_run
        self._choices: dict[int, ChoiceState] = {}
        self.decisions: list[Decision] = []
        self.failures: list[GuardFailure] = []
        self.ended = False  # the stream has been ended here: stop reading the upstream
        self.rounds = 0  # gating chain runs
        # With a shadow policy: the upstream's whole text per channel (and held calls), as it arrived.
        self.streamed: dict[tuple[PathPart, ...], list[str]] | None = None
        self._call_paths: set[tuple[PathPart, ...]] = set()  # the streamed texts that tool calls carry
        names = entry_names(entries)
        gates = [entry.action in ("block", "redact") and (entry.mode or policy.defaults.mode) == "enforce"
                 for entry in entries]
        self._gating = [(e, n) for e, n, g in zip(entries, names, gates, strict=True) if g]
        self._watching = [(e, n) for e, n, g in zip(entries, names, gates, strict=True) if not g]
        # At least the shortest text a gating guard's pattern can match (guards that can tell say so).
        shortest = max((shortest_match(engine, e) for e, _ in self._gating), default=0)
        self._hold = max(policy.stream.hold_back_chars, shortest) if self._gating else 0
        self._step = min(self._hold, _CHECK_STEP_MAX)

    def _path(self, index: int, name: str) -> tuple[PathPart, ...]:
        raise NotImplementedError

    async def process(self, event: SSEEvent) -> bytes:
        """Bytes to send the client for one upstream event (possibly none)."""
        raise NotImplementedError

    async def finish(self) -> bytes:
        """The upstream's stream ended: what is still to send."""
        raise NotImplementedError

    def _state(self, index: int, calls: CallBuffer | None = None) -> ChoiceState:
        state = self._choices.get(index)
        if state is None:
            state = self._choices[index] = ChoiceState(index, calls=calls)
        return state

    async def feed(self, state: ChoiceState, name: str, piece: str, final: bool) -> str:
        """Add ``piece`` to a channel and return what may be released now ('' if nothing, or
        if the choice is blocked). ``final``: the channel has ended; everything left is
        checked and released, and its background checks are settled."""
        buffer = state.channels.setdefault(name, HoldBackBuffer(self._hold))
        buffer.feed(piece)
        if self.streamed is not None:
            self.streamed.setdefault(self._path(state.index, name), []).append(piece)
        self._watch(state, name, buffer, final)
        released = await self._release(state, name, buffer, final)
        if final and not state.blocked:
            await self._settle_checks(state, buffer)
        return "" if state.blocked else released

    async def check_whole(self, segments: list[Segment], state: ChoiceState) -> ChainResult | None:
        """Held calls, checked as one by the whole chain: the result with rewrites and restored
        placeholders in its texts, or None when it blocked (``state`` is then blocked)."""
        if self.streamed is not None:
            for segment in segments:
                self.streamed[segment.path] = [segment.text]
                if segment.call:
                    self._call_paths.add(segment.path)
        result = await self._run(list(zip(self._entries, entry_names(self._entries), strict=True)), segments,
                                 remember=True)
        self.decisions.extend(result.decisions)
        self.failures.extend(result.failures)
        if result.verdict == "blocked":
            state.blocked = True
            return None
        self._restorer.restore_result(result)
        return result

    def streamed_segments(self) -> list[Segment] | None:
        """The streamed text per channel as the upstream sent it, if kept (``streamed``)."""
        if self.streamed is None:
            return None
        return [Segment("".join(pieces), path, "assistant", path in self._call_paths)
                for path, pieces in self.streamed.items()]

    @staticmethod
    def rewrite(target: object, result: ChainResult) -> None:
        apply_texts(target, result.rewrites())

    @property
    def verdict(self) -> Verdict:
        return verdict_of(self.decisions, self.failures)

    @property
    def blocked(self) -> bool:
        return any(state.blocked for state in self._choices.values())

    async def _run(self, entries: Sequence[tuple[GuardEntry, str]], segments: list[Segment],
                   remember: bool = False) -> ChainResult:
        started_ns = time.time_ns()
        result = await self._engine.run(self._policy, [e for e, _ in entries], segments, self._context,
                                        remember=remember, names=[n for _, n in entries])
        if self._on_run is not None:
            self._on_run(result, started_ns)
        return result

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
        result = await self._run(self._gating, [Segment(window, self._path(state.index, name), "assistant")])
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
            segment = Segment(buffer.text[buffer.checked : until], self._path(state.index, name), "assistant")
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

    def cancel_checks(self) -> None:
        """The stream ended early (disconnect, error): drop background checks still running."""
        for state in self._choices.values():
            for buffer in state.channels.values():
                for task in buffer.checks:
                    task.cancel()

    def trailer(self) -> bytes:
        """An SSE comment with the stream's output verdict; clients ignore comments."""
        return comment(f"guardproxy verdict={self.verdict}")
