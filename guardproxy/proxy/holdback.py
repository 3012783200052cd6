"""One streamed text channel (a choice's ``content``, ``reasoning_content``, ...):
everything received, how much has been released, and where the next release may end."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field

from guardproxy.engine import ChainResult

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
