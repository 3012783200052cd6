"""The engine, with each chain run's guard timings (and, for traces, the action
each guard's entry asks for) reported to telemetry.

Timings are taken per engine run rather than per request, so streamed output
stages (one run per release) are measured too. Findings are not counted here:
a stream's overlapping windows would count a finding twice; they are counted
once per stage from the stage's settled outcome (``RequestTelemetry.stage_done``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence

from guardproxy.engine.core import ChainResult, Engine, entry_names
from guardproxy.guards import GuardContext, Segment
from guardproxy.policy.schema import GuardEntry, Policy


class ObservedEngine(Engine):
    def __init__(self, guard_threads: int, on_result: Callable[[ChainResult, int, Mapping[str, str]], None]) -> None:
        super().__init__(guard_threads)
        self._on_result = on_result

    async def run(
        self, policy: Policy, entries: Sequence[GuardEntry], segments: Sequence[Segment], context: GuardContext,
        *, remember: bool = True, names: Sequence[str] | None = None,
    ) -> ChainResult:
        started_ns = time.time_ns()
        names = names or entry_names(entries)
        result = await super().run(policy, entries, segments, context, remember=remember, names=names)
        self._on_result(result, started_ns, {name: e.action for name, e in zip(names, entries, strict=True)})
        return result
