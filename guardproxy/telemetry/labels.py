"""Label values with bounded cardinality.

Every label value comes from a closed set (routes, verdicts, stages), from the
operator's policy files (policy, chain and guard names), or passes through a
``LabelCap``: client-chosen model names and guard finding labels. No label ever
carries request text, user ids or keys.
"""

from __future__ import annotations

import re

OTHER = "other"
NONE = "none"
MODEL_LIMIT = 50
FINDING_LABEL_LIMIT = 50
_MAX_LENGTH = 64

# -2024-08-06, -20241022, -0613 (a month-day pair only, so "-1106" matches but "-8192" does not)
_DATE_SUFFIX = re.compile(r"-(?:\d{4}-\d{2}-\d{2}|20\d{6}|(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01]))$")


def normalise_model(model: str | None) -> str:
    """``GPT-4o-2024-08-06`` -> ``gpt-4o``: lower case, no date suffix, bounded length."""
    if not model:
        return NONE
    name = _DATE_SUFFIX.sub("", model.strip().lower())
    return name[:_MAX_LENGTH] or NONE


class LabelCap:
    """Passes the first ``limit`` distinct values through and maps every later
    one to ``other``, so a client sending random model names cannot grow the
    number of series without bound. Per process: with several workers, each
    keeps its own first ``limit``."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._seen: set[str] = set()

    def __call__(self, value: str) -> str:
        if value in self._seen:
            return value
        if len(self._seen) >= self._limit:
            return OTHER
        self._seen.add(value)
        return value
