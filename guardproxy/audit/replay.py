"""``guardproxy replay``: what a policy would have done to the traffic an audit trail recorded.

Each record's stored texts (``text``, present only under ``audit: {text: redacted}``) run
through the new policy's chain with the real engine: the input chain on the input text, the
output chain on the output text, each stage on its own. The new verdict is the worse of the
stages; a stage the record ran but stored no text for keeps its recorded verdict. Records
without any text cannot be replayed and are counted as such, never guessed.

The trail masked every span a live guard found (``<PERSON_1>``, ``[prompt_injection]``), so a
guard sees the marks, not the values; ``placeholders.py`` credits such findings to the new policy
(an unchanged redaction is no ``redacted->pass``, one turned into a block is ``redacted->blocked``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from guardproxy.audit.placeholders import Firing, LiveFinding, credit_masked
from guardproxy.audit.record import AuditRecord, GuardRecord, TextRecord
from guardproxy.engine import Engine, Verdict, worst
from guardproxy.guards import GuardContext, Segment, Stage
from guardproxy.policy import Policy, PolicySet

STAGES: tuple[Stage, ...] = ("input", "output")


@dataclass
class StageReplay:
    """One stage of one record: the new verdict, and the (entry, label) pairs that fired live and now."""

    verdict: Verdict
    live: set[Firing]
    now: set[Firing]
    carried: int = 0  # live findings credited to the new policy from the marks they left
    failures: int = 0


@dataclass
class ReplaySummary:
    """The whole run, in the shape ``--json`` prints (see ``to_json``)."""

    examples_wanted: int = 10
    records: int = 0
    not_replayable: int = 0
    changed: int = 0
    carried: int = 0
    failures: int = 0
    transitions: Counter[str] = field(default_factory=Counter)
    started: dict[str, Counter[str]] = field(default_factory=dict)  # "stage/entry" -> label -> records
    stopped: dict[str, Counter[str]] = field(default_factory=dict)
    examples: list[dict[str, Any]] = field(default_factory=list)

    def add(self, record: AuditRecord, stages: dict[Stage, StageReplay]) -> None:
        """Count one replayed record (``stages`` holds the stages that had text)."""
        carried_over = [record.stages[s] for s in STAGES if s in record.stages and s not in stages]
        new = worst(*(r.verdict for r in stages.values()), *carried_over)  # type: ignore[arg-type]
        started: list[str] = []
        stopped: list[str] = []
        changed_stages: dict[str, str] = {}
        for stage, replayed in stages.items():
            if replayed.verdict != record.stages.get(stage, "pass"):
                changed_stages[stage] = f"{record.stages.get(stage, 'pass')}->{replayed.verdict}"
            self.carried += replayed.carried
            self.failures += replayed.failures
            for name, label in sorted(replayed.now - replayed.live):
                self.started.setdefault(f"{stage}/{name}", Counter())[label] += 1
                started.append(f"{stage}/{name}: {label}")
            for name, label in sorted(replayed.live - replayed.now):
                self.stopped.setdefault(f"{stage}/{name}", Counter())[label] += 1
                stopped.append(f"{stage}/{name}: {label}")
        if new == record.verdict:
            return
        transition = f"{record.verdict}->{new}"
        self.changed += 1
        self.transitions[transition] += 1
        if len(self.examples) < self.examples_wanted:
            self.examples.append({"request_id": record.request_id, "time": record.time, "transition": transition,
                                  "stages": changed_stages, "started": started, "stopped": stopped})

    def by_guard(self) -> dict[str, dict[str, dict[str, int]]]:
        """``{"stage/entry": {"started": {label: records}, "stopped": {label: records}}}``, entries sorted."""
        keys = sorted(set(self.started) | set(self.stopped))
        return {key: {"started": dict(sorted(self.started.get(key, Counter()).items())),
                      "stopped": dict(sorted(self.stopped.get(key, Counter()).items()))} for key in keys}

    def to_json(self) -> dict[str, Any]:
        return {"records": self.records, "changed": self.changed,
                "transitions": dict(sorted(self.transitions.items())), "by_guard": self.by_guard(),
                "examples": self.examples, "not_replayable": self.not_replayable}


def chain_for(policies: PolicySet, record: AuditRecord) -> tuple[Policy, str]:
    """The new policy of the record's policy name (else the set's fallback), and the record's
    chain if that policy has it (else ``default``)."""
    policy = policies.get(record.policy) or policies.fallback
    return policy, record.chain if record.chain in policy.chains else "default"


async def replay_record(engine: Engine, policies: PolicySet, record: AuditRecord) -> dict[Stage, StageReplay] | None:
    """The new policy's verdict on each stage the record stored text for; None without text."""
    if not record.text:
        return None
    policy, chain_name = chain_for(policies, record)
    chain = policy.chains[chain_name]
    prompt = tuple(_segments(record.text.get("input", [])))
    replayed: dict[Stage, StageReplay] = {}
    for stage in STAGES:
        if stage not in record.text:
            continue
        entries = chain.input if stage == "input" else chain.output
        segments = _segments(record.text[stage])
        context = GuardContext(stage, endpoint=record.api, model=record.model,
                               prompt=prompt if stage == "output" else ())
        result = await engine.run(policy, entries, segments, context, remember=False)
        now = {(d.name, d.label) for d in result.decisions}
        credited, verdict = credit_masked(live_findings(record.guards, stage), policy, entries,
                                          [s.text for s in segments], now)
        replayed[stage] = StageReplay(worst(result.verdict, verdict), _live_firings(record.guards, stage),
                                      now | set(credited), len(credited), len(result.failures))
    return replayed


def _segments(texts: Sequence[TextRecord]) -> list[Segment]:
    return [Segment(t.text, path=tuple(t.path), role=t.role) for t in texts]


def _live_firings(guards: Sequence[GuardRecord], stage: str) -> set[Firing]:
    return {(g.name, label) for g in guards if g.stage == stage for label in g.labels}


def live_findings(guards: Sequence[GuardRecord], stage: str) -> list[LiveFinding]:
    """The stage's live findings: (entry, guard type, label), whatever their action and mode."""
    return [(g.name, g.guard, label) for g in guards if g.stage == stage for label in g.labels]


async def replay_trail(engine: Engine, policies: PolicySet, records: Iterable[AuditRecord],
                       examples: int) -> ReplaySummary:
    """Replay every record; ``RecordError`` from the trail propagates (a partial count would mislead)."""
    summary = ReplaySummary(examples_wanted=examples)
    for record in records:
        summary.records += 1
        stages = await replay_record(engine, policies, record)
        if stages is None:
            summary.not_replayable += 1
            continue
        summary.add(record, stages)
    return summary


def summary_text(summary: ReplaySummary, policy_tag: str, trail: str) -> str:
    """The summary for people: counts per transition, per entry and label, then examples."""
    replayed = summary.records - summary.not_replayable
    lines = [f"replay of {policy_tag} over {trail}: {summary.records} records, {replayed} replayed, "
             f"{summary.not_replayable} not replayable (no text in the trail)",
             f"changed verdicts: {summary.changed} of {replayed}"]
    lines.extend(f"  {name:<22}{count:>7}" for name, count in sorted(summary.transitions.items()))
    by_guard = summary.by_guard()
    if by_guard:
        lines.append("entries and labels that newly fire (+) or stop firing (-), in records:")
        for key, change in by_guard.items():
            for label in sorted(set(change["started"]) | set(change["stopped"])):
                lines.append(f"  {key:<28}{label:<24}+{change['started'].get(label, 0):<6}"
                             f"-{change['stopped'].get(label, 0)}")
    if summary.carried:
        lines.append(f"live findings credited from the marks they left in the stored text: {summary.carried}")
    if summary.failures:
        lines.append(f"guard failures during replay (on_error applied): {summary.failures}")
    if summary.examples:
        lines.append("examples:")
        for example in summary.examples:
            detail = "; ".join([*(f"{stage} {change}" for stage, change in example["stages"].items()),
                                *(f"+{s}" for s in example["started"]), *(f"-{s}" for s in example["stopped"])])
            lines.append(f"  {example['request_id']}  {example['transition']}  {detail}".rstrip())
    return "\n".join(lines)
