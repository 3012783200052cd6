"""``detector: moderation``: the upstream's OpenAI-compatible ``/v1/moderations``.

One call carries every text of a request. A text counts as toxic when the
upstream flags it or its highest category score reaches the threshold; the
finding's label is that category (``hate``, ``violence``, ...).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from guardproxy.guards.api import UpstreamCallError, UpstreamClient


class ModerationUnavailable(RuntimeError):
    """The moderation detector runs only inside the proxy, where an upstream exists."""


@dataclass(frozen=True, slots=True)
class ModerationResult:
    flagged: bool
    category: str
    score: float


def _parse_result(item: Any, index: int) -> ModerationResult:
    if not isinstance(item, dict) or not isinstance(item.get("category_scores"), dict):
        raise UpstreamCallError(f"/moderations: results[{index}] has no category_scores")
    scores = {name: float(value) for name, value in item["category_scores"].items()
              if isinstance(value, int | float) and not isinstance(value, bool)}
    category, score = max(scores.items(), key=lambda pair: pair[1], default=("moderation", 0.0))
    flagged = item.get("flagged") is True
    if flagged and isinstance(item.get("categories"), dict):
        hits = [name for name, hit in item["categories"].items() if hit is True]
        if hits and category not in hits:
            category = max(hits, key=lambda name: scores.get(name, 0.0))
    return ModerationResult(flagged, category, score)


async def moderate(upstream: UpstreamClient | None, texts: Sequence[str], model: str,
                   timeout: float) -> list[ModerationResult]:
    """One result per text, in order; raises when the upstream is absent or answers wrongly."""
    if upstream is None:
        raise ModerationUnavailable("detector: moderation needs the upstream API, which is not available here "
                                    "(guardproxy eval and test run guards without one)")
    if not texts:
        return []
    answer = await upstream.post_json("/moderations", {"input": list(texts), "model": model}, timeout)
    results = answer.get("results") if isinstance(answer, dict) else None
    if not isinstance(results, list) or len(results) != len(texts):
        raise UpstreamCallError(f"/moderations: expected {len(texts)} results")
    return [_parse_result(item, index) for index, item in enumerate(results)]
