"""A streamed choice's state for the stream guard: its text channels (``content``,
``reasoning_content``, ...), each holding everything received, how much has been released
and where the next release may end; its held calls; and its outcome."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field

from guardproxy.engine import ChainResult, Engine
from guardproxy.policy.schema import GuardEntry
from guardproxy.proxy.dialects import CallBuffer

_WHITESPACE = re.compile(r"\s")


@dataclass
class HoldBackBuffer:
    hold_back: int
    text: str = ""
    released: int = 0
    checked: int = 0  # text up to here has been handed to the background guards
    decided: int = 0  # the end of the furthest span a check has settled; later windows start no earlier
    checks: list[asyncio.Task[ChainResult]] = field(default_factory=list)

    def feed(self, piece: str) -> None:
        self.text += piece

    def cut(self, final: bool) -> int | None:
        """Where the next release may end, or None if nothing can be released yet.
        Releases snap back to whitespace so that a word is never split between two checks."""
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


def shortest_match(engine: Engine, entry: GuardEntry) -> int:
    """The shortest text the entry's guard can match, if it says (keywords patterns do)."""
    try:
        guard = engine.guard_for(entry)
    except Exception:  # a guard that cannot be built fails in the chain run, under its on_error
        return 0
    shortest = getattr(guard, "min_match_chars", 0)
    return shortest if isinstance(shortest, int) else 0


@dataclass
class ChoiceState:
    index: int
    channels: dict[str, HoldBackBuffer] = field(default_factory=dict)
    calls: CallBuffer | None = None
    notes: list[str] = field(default_factory=list)
    blocked: bool = False
    finished: bool = False
