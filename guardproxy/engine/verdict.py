"""What a guard run decided, and the one function that turns decisions into a verdict.

Every verdict in guardproxy (a chain run, a stream, a choice, a whole request,
the check API) is ``verdict_of`` over its decisions: any enforced block makes it
``blocked``; else any enforced redaction ``redacted``; else any other decision
(a flag, a note, anything in monitor mode) or any guard failure ``flagged``. A
guard that failed with ``on_error: block`` contributes a block decision (segment
-1); one that failed open leaves the text unchecked, which ``flagged`` says.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

Verdict = Literal["pass", "flagged", "redacted", "blocked"]
Action = Literal["block", "redact", "flag", "annotate"]
Mode = Literal["enforce", "monitor"]
VERDICT_RANK: dict[Verdict, int] = {"pass": 0, "flagged": 1, "redacted": 2, "blocked": 3}
WHOLE_RUN = -1  # the segment of a decision that concerns no single segment (a failing guard's block)


@dataclass(frozen=True, slots=True)
class Decision:
    """A finding with what the engine did about it."""

    guard: str
    name: str
    label: str
    score: float
    segment: int
    start: int | None
    end: int | None
    action: Action
    mode: Mode
    replacement: str | None = None
    restorable: bool = False
    document: int | None = None  # the finding is in context.documents[document] (segment is -1)

    @property
    def enforced(self) -> bool:
        return self.mode == "enforce"

    @property
    def blocks(self) -> bool:
        return self.enforced and self.action == "block"

    @property
    def redacts(self) -> bool:
        return self.enforced and self.action == "redact"


@dataclass(frozen=True, slots=True)
class GuardFailure:
    guard: str
    name: str
    kind: Literal["error", "timeout"]
    detail: str
    blocked: bool


def verdict_of(decisions: Iterable[Decision], failures: Iterable[GuardFailure] = ()) -> Verdict:
    verdict: Verdict = "flagged" if any(True for _ in failures) else "pass"
    for decision in decisions:
        if decision.blocks:
            return "blocked"
        if decision.redacts:
            verdict = "redacted"
        elif verdict == "pass":
            verdict = "flagged"
    return verdict


def worst(*verdicts: Verdict) -> Verdict:
    return max(verdicts, key=VERDICT_RANK.__getitem__)
