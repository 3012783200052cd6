"""Where a finished request's evidence goes: its shadow policy (if any, sampled), then the
audit trail (if on; passed requests sampled). Built by the app factory; the proxy calls
``request_finished`` once per guarded request, on the event loop, and it never blocks."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from guardproxy.audit.build import Finished, build_record
from guardproxy.audit.evidence import RequestEvidence
from guardproxy.audit.record import ShadowRecord
from guardproxy.audit.shadow import ShadowJob, ShadowRunner
from guardproxy.audit.writer import AuditWriter
from guardproxy.engine import Verdict
from guardproxy.guards import Segment, Stage
from guardproxy.policy import PolicySet, RouteChoice
from guardproxy.telemetry.report import RequestReport

if TYPE_CHECKING:
    from guardproxy.telemetry.metrics import ProxyMetrics


class EvidenceSink:
    def __init__(self, writer: AuditWriter | None, shadows: ShadowRunner | None,
                 metrics: ProxyMetrics | None = None, sample: Callable[[], float] = random.random) -> None:
        self.writer = writer
        self.shadows = shadows
        self._metrics = metrics
        self._sample = sample

    def new_evidence(self, policies: PolicySet) -> RequestEvidence | None:
        """What a request must gather; None when there is neither a trail nor a shadow (no cost then)."""
        shadows = self.shadows is not None and bool(policies.shadows)
        if self.writer is None and not shadows:
            return None
        return RequestEvidence(audit=self.writer is not None, shadows=shadows)

    def request_finished(self, report: RequestReport, evidence: RequestEvidence, choice: RouteChoice,
                         policies: PolicySet, trace_id: str | None) -> None:
        finished = Finished(report, evidence, choice, trace_id, time.time())
        write = self.writer is not None and (
            report.verdict not in (None, "pass") or self._sample() < choice.policy.audit.sample_passed)
        shadow = policies.shadow_of(choice.policy) if self.shadows is not None else None
        if shadow is not None and evidence.keep_segments and self._sample() < choice.policy.shadow_sample:
            assert self.shadows is not None
            segments: dict[Stage, list[Segment]] = {}
            input_segments = evidence.unguarded_input
            if "input" in evidence.stages:
                input_segments = evidence.stages["input"].segments
            if input_segments:
                segments["input"] = input_segments
            output = evidence.stages.get("output")
            if output is not None and output.segments:
                segments["output"] = output.segments
            live = {stage: kept.verdict for stage, kept in evidence.stages.items()}

            def done(record: ShadowRecord | None, verdicts: dict[str, Verdict]) -> None:
                self._count_shadow(choice, record, live, verdicts)
                if write:
                    self._write(finished, record)

            job = ShadowJob(shadow, choice.chain_name, segments, live, report.route, report.model,
                            evidence.documents, done)
            if self.shadows.submit(job):
                return
        if write:
            self._write(finished, None)

    def _write(self, finished: Finished, shadow: ShadowRecord | None) -> None:
        assert self.writer is not None
        self.writer.submit(lambda: build_record(finished, shadow).to_json())

    def _count_shadow(self, choice: RouteChoice, record: ShadowRecord | None, live: dict[str, Verdict],
                      verdicts: dict[str, Verdict]) -> None:
        if self._metrics is None or record is None:
            return
        for stage, shadow_verdict in verdicts.items():
            self._metrics.shadow_decisions.labels(choice.policy.name, record.policy, stage,
                                                  live.get(stage, "pass"), shadow_verdict).inc()
