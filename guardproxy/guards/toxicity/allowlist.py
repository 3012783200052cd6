"""Terms that must never trigger the toxicity guard on their own.

Product names and medical or anatomical words ("Dick's Sporting Goods",
"breast cancer", "rectal exam") look like abuse to a word-level model. They
are replaced by a neutral word before scoring, so a window fires only if the
rest of it is toxic; spans still index the original text.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

_NEUTRAL = "item"


class AllowList:
    def __init__(self, terms: Sequence[str]) -> None:
        self._pattern: re.Pattern[str] | None = None
        if terms:
            # Longest first, so "breast cancer" wins over "breast".
            alternatives = sorted({t.strip() for t in terms}, key=len, reverse=True)
            body = "|".join(r"\s+".join(re.escape(word) for word in term.split()) for term in alternatives)
            self._pattern = re.compile(rf"(?<!\w)(?:{body})(?!\w)", re.IGNORECASE)

    def mask(self, text: str) -> str:
        """``text`` with each allowed term replaced by a neutral word."""
        if self._pattern is None:
            return text
        return self._pattern.sub(_NEUTRAL, text)
