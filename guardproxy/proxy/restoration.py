"""Reversible placeholders: putting the user's own values back into the answer.

The input stage replaced values with placeholders (``<PERSON_1>``) and kept the
map for this one request, in memory only; it is never logged or traced. Where
the model's answer repeats a placeholder, the value goes back. Restoration works
on the model's own text and never inside a span an output guard redacted, so
values the model invents are still redacted, and the user's are not.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from guardproxy.engine import ChainResult
from guardproxy.engine.redaction import Redaction, redact_spans


class Restorer:
    def __init__(self, mapping: Mapping[str, str]) -> None:
        self._mapping = dict(mapping)
        ordered = sorted(self._mapping, key=len, reverse=True)
        self._pattern = re.compile("|".join(re.escape(p) for p in ordered)) if ordered else None
        self._longest = max((len(p) for p in ordered), default=0)

    def __bool__(self) -> bool:
        return self._pattern is not None

    def spans(self, text: str, start: int = 0, end: int | None = None) -> list[Redaction]:
        if self._pattern is None:
            return []
        stop = len(text) if end is None else end
        matches = self._pattern.finditer(text, start, stop)
        return [Redaction(m.start(), m.end(), self._mapping[m.group()]) for m in matches]

    def apply(self, text: str, guard_redactions: Sequence[Redaction]) -> str:
        """``text`` with the guards' redactions and, outside them, restored values."""
        restored = [r for r in self.spans(text)
                    if all(r.end <= g.start or r.start >= g.end for g in guard_redactions)]
        return redact_spans(text, [*guard_redactions, *restored])

    def safe_cut(self, text: str, released: int, cut: int, floor: int) -> int:
        """Move a streaming release point so that no placeholder is split: forward
        past a complete placeholder that straddles it, or back to the ``<`` of one
        still arriving (but never below ``floor``, the end of a span already decided)."""
        if self._pattern is None:
            return cut
        window_start = max(released, cut - self._longest)
        for match in self._pattern.finditer(text, window_start, min(len(text), cut + self._longest)):
            if match.start() < cut < match.end():
                cut = match.end()
        opening = text.rfind("<", window_start, cut)
        if opening >= 0 and ">" not in text[opening:cut]:
            tail = text[opening:]
            if any(p.startswith(tail) for p in self._mapping):
                return max(opening, floor)
        return cut

    def restore_result(self, result: ChainResult) -> None:
        """Recompute ``result.texts``: guard redactions first, restorations around them."""
        if self._pattern is None or result.verdict == "blocked":
            return
        for index, segment in enumerate(result.segments):
            result.texts[index] = self.apply(segment.text, result.redactions.get(index, []))
