"""Running a chain of guards over text segments and deciding what happens.

Guards in a stage all see the original text and run concurrently, each where
its ``kind`` says: ``cpu`` guards in the guard pool (``pool.py``), ``inline``
ones on the event loop while the pool works, ``io`` ones awaited on the event
loop beside the pool. A guard's findings for segments it has seen before may
come from its findings cache (``findings_cache.py``). Findings are then
combined. Any enforced block wins; otherwise enforced redactions are merged
and applied; any other finding makes the verdict ``flagged``. Monitor mode
computes everything and changes nothing. A guard that raises or overruns its
timeout follows ``on_error``: ``block`` fails closed, ``allow`` fails open.
Offsets in decisions index the original text.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from guardproxy.engine.failures import describe_error
from guardproxy.engine.findings_cache import CacheLookup, SegmentKey, segment_key
from guardproxy.engine.instances import GuardInstance, GuardInstances
from guardproxy.engine.pool import Failure, GuardPool, PoolRun, PoolScan, findings_now, overrun
from guardproxy.engine.redaction import Redaction, redact_spans
from guardproxy.engine.verdict import Decision, GuardFailure, Verdict, verdict_of
from guardproxy.guards import Finding, Guard, GuardContext, Segment, Stage
from guardproxy.policy.schema import DEFAULT_NOTE, GuardEntry, Policy

Outcome = tuple[list[Finding], Failure | None, float]  # findings, failure, seconds
log = logging.getLogger("guardproxy.engine")


@dataclass(frozen=True, slots=True)
class GuardRun:
    """Telemetry's view of one guard's execution."""

    guard: str
    name: str
    seconds: float
    findings: int
    outcome: Literal["ok", "error", "timeout"]
    action: str = ""


@dataclass
class ChainResult:
    stage: Stage
    segments: Sequence[Segment]
    texts: list[str]
    decisions: list[Decision] = field(default_factory=list)
    failures: list[GuardFailure] = field(default_factory=list)
    runs: list[GuardRun] = field(default_factory=list)
    verdict: Verdict = "pass"
    message: str | None = None
    redactions: dict[int, list[Redaction]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def blocking(self) -> list[Decision]:
        return [d for d in self.decisions if d.action == "block" and d.enforced]

    def rewrites(self) -> list[tuple[Segment, str]]:
        return [(seg, text) for seg, text in zip(self.segments, self.texts, strict=True) if seg.text != text]

    def restorations(self) -> dict[str, str]:
        """Placeholder -> original value, for this request only. A placeholder
        that stands for two different values (two guards numbering alike) is
        left out, since restoring it would guess."""
        mapping: dict[str, str] = {}
        ambiguous: set[str] = set()
        for d in self.decisions:
            if not (d.restorable and d.enforced and d.action == "redact" and d.replacement and d.start is not None):
                continue
            value = self.segments[d.segment].text[d.start : d.end]
            if mapping.setdefault(d.replacement, value) != value:
                ambiguous.add(d.replacement)
        for placeholder in ambiguous:
            log.warning("placeholder %s stands for several values; it will not be restored", placeholder)
            del mapping[placeholder]
        return mapping


def entry_name(entry: GuardEntry, index: int, entries: Sequence[GuardEntry]) -> str:
    """The entry's ``name``, else the guard type, numbered when a type repeats."""
    if entry.name:
        return entry.name
    same = [i for i, e in enumerate(entries) if e.guard == entry.guard and not e.name]
    return entry.guard if len(same) == 1 else f"{entry.guard}#{same.index(index) + 1}"


def entry_names(entries: Sequence[GuardEntry]) -> list[str]:
    return [entry_name(e, i, entries) for i, e in enumerate(entries)]


class Engine:
    """Owns guard instances and their findings caches (``instances.py``) and the bounded
    pool CPU-heavy guards run in."""

    def __init__(self, guard_threads: int = 4, findings_cache_size: int = 4096) -> None:
        self._pool = GuardPool(guard_threads)
        self._instances = GuardInstances(findings_cache_size)

    def guard_for(self, entry: GuardEntry) -> Guard:
        return self._instances.get(entry).guard

    @property
    def instance_count(self) -> int:
        """Guard instances kept for the current policies."""
        return len(self._instances)

    def prepare(self, policies: Sequence[Policy]) -> None:
        """Build and warm every guard the policies use (blocking; call off the loop)."""
        self._instances.prepare(policies)

    def retain(self, policies: Sequence[Policy]) -> int:
        """After a reload to ``policies``: drop the guard instances (and their findings caches)
        they no longer use; requests still running under older policies keep theirs. Returns
        how many were dropped."""
        return self._instances.retain(policies)

    def close(self) -> None:
        self._pool.close()

    async def run(
        self,
        policy: Policy,
        entries: Sequence[GuardEntry],
        segments: Sequence[Segment],
        context: GuardContext,
        *,
        remember: bool = True,
        names: Sequence[str] | None = None,
    ) -> ChainResult:
        """Run a chain over the segments. ``remember=False`` keeps them out of the
        findings caches: a streamed answer's windows never recur and would only push
        out a conversation's history. ``names`` are the entries' names when they are
        part of a longer chain (see ``entry_names``)."""
        result = ChainResult(context.stage, segments, [s.text for s in segments])
        if not entries or not segments:
            return result
        names = names or entry_names(entries)
        timeouts = [(e.timeout_ms or policy.defaults.timeout_ms) / 1000 for e in entries]
        outcomes = await self._scan_all(policy, entries, timeouts, segments, context, remember)
        block_messages: list[str] = []
        for entry, name, (findings, failure, seconds) in zip(entries, names, outcomes, strict=True):
            mode = entry.mode or policy.defaults.mode
            if failure is not None:
                on_error = entry.on_error or policy.defaults.on_error
                blocked = on_error == "block" and mode == "enforce"
                kind, detail = failure
                result.failures.append(GuardFailure(entry.guard, name, kind, detail, blocked))
                result.runs.append(GuardRun(entry.guard, name, seconds, 0, kind, entry.action))
                log.warning("guard %s (%s) %s: %s; on_error=%s", name, entry.guard, kind, detail, on_error)
                if blocked:
                    result.decisions.append(
                        Decision(entry.guard, name, f"guard_{kind}", 1.0, -1, None, None, "block", mode)
                    )
                    block_messages.append(entry.message or "")
                continue
            result.runs.append(GuardRun(entry.guard, name, seconds, len(findings), "ok", entry.action))
            if findings and entry.action == "annotate" and mode == "enforce":
                note = entry.note or DEFAULT_NOTE
                if note not in result.notes:
                    result.notes.append(note)
            for f in findings:
                result.decisions.append(
                    Decision(entry.guard, name, f.label, f.score, f.segment, f.start, f.end, entry.action, mode,
                             f.replacement, f.restorable, f.document)
                )
                if entry.action == "block" and mode == "enforce":
                    block_messages.append(entry.message or "")
        self._settle(result, policy, block_messages)
        return result

    async def _scan_all(
        self, policy: Policy, entries: Sequence[GuardEntry], timeouts: Sequence[float],
        segments: Sequence[Segment], context: GuardContext, remember: bool,
    ) -> list[Outcome]:
        """Every entry's outcome, in order. CPU scans go to the pool first; inline scans
        then run while the pool works; io scans and the pool are awaited together."""
        outcomes: dict[int, Outcome] = {}
        scans = self._plan(policy, entries, segments, context.documents, remember, outcomes)
        pooled = {i: PoolScan(s.instance.guard, s.segments, s.instance.times)
                  for i, s in scans.items() if s.instance.kind == "cpu"}
        in_pool = self._pool.submit(pooled, {i: timeouts[i] for i in pooled}, context) if pooled else None
        waits: list[Awaitable[None]] = []
        for index, scan in scans.items():
            if scan.instance.kind == "inline":
                outcomes[index] = _scan_inline(scan, context)
            elif scan.instance.kind == "io":
                waits.append(_scan_io(scan, timeouts[index], context, outcomes, index))
        if in_pool is not None:
            waits.append(_pool_outcomes(in_pool, scans, outcomes))
        if len(waits) == 1:
            await waits[0]  # the common case: no task to create
        elif waits:
            await asyncio.gather(*waits)
        return [outcomes[index] for index in range(len(entries))]

    def _plan(
        self, policy: Policy, entries: Sequence[GuardEntry], segments: Sequence[Segment], documents: Sequence[str],
        remember: bool, outcomes: dict[int, Outcome],
    ) -> dict[int, _Scan]:
        """What each entry must scan: every segment, or those its findings cache does not
        know. Entries settled without a scan (all cached, or no guard) go to ``outcomes``."""
        keys: list[SegmentKey] = []
        scans: dict[int, _Scan] = {}
        for index, entry in enumerate(entries):
            try:
                instance = self._instances.get(entry, policy)
            except Exception as exc:  # a guard that cannot even be built follows on_error too
                outcomes[index] = ([], ("error", describe_error(exc)), 0.0)
                continue
            if instance.cache is None or not remember:
                scans[index] = _Scan(instance, segments, documents)
                continue
            keys = keys or [segment_key(s) for s in segments]
            lookup = instance.cache.lookup(keys)
            if lookup.missing:
                scans[index] = _Scan(instance, [segments[i] for i in lookup.missing], documents, lookup)
            else:
                outcomes[index] = (lookup.complete([]), None, 0.0)
        return scans

    @staticmethod
    def _settle(result: ChainResult, policy: Policy, block_messages: list[str]) -> None:
        """The verdict, and every segment's redacted text. Redactions are applied even when
        the run blocks: a dialect that withholds only the blocked choice of several sends
        the others, and they must be redacted too."""
        per_segment: dict[int, list[Redaction]] = {}
        for d in result.decisions:
            if d.redacts and d.segment >= 0:
                text = result.segments[d.segment].text
                start, end = (d.start, d.end) if d.start is not None and d.end is not None else (0, len(text))
                per_segment.setdefault(d.segment, []).append(Redaction(start, end, d.replacement or f"[{d.label}]"))
        result.redactions = per_segment
        for index, redactions in per_segment.items():
            result.texts[index] = redact_spans(result.segments[index].text, redactions)
        result.verdict = verdict_of(result.decisions, result.failures)
        if result.verdict == "blocked":
            default = policy.messages.input_blocked if result.stage == "input" else policy.messages.output_blocked
            result.message = next((m for m in block_messages if m), default)


@dataclass(frozen=True, slots=True)
class _Scan:
    """One guard's scan in a run: the segments it gets, and its cache lookup if it has one."""

    instance: GuardInstance
    segments: Sequence[Segment]
    documents: Sequence[str]
    lookup: CacheLookup | None = None

    def outcome(self, found: list[Finding], seconds: float) -> Outcome:
        """The scan's valid findings, numbered as in the run."""
        valid = _valid_findings(found, self.segments, () if self.lookup is not None else self.documents)
        return (self.lookup.complete(valid) if self.lookup is not None else valid), None, seconds


def _scan_inline(scan: _Scan, context: GuardContext) -> Outcome:
    started = time.perf_counter()
    try:
        found = findings_now(scan.instance.guard.scan(scan.segments, context))
    except Exception as exc:  # a guard's bug must become on_error, never a 500
        return [], ("error", describe_error(exc)), time.perf_counter() - started
    return scan.outcome(found, time.perf_counter() - started)


async def _scan_io(scan: _Scan, timeout: float, context: GuardContext, outcomes: dict[int, Outcome],
                   index: int) -> None:
    """An io guard's scan, awaited on the loop under its timeout; the outcome goes to ``outcomes[index]``."""
    started = time.perf_counter()
    deadline = asyncio.timeout(timeout)
    try:
        async with deadline:
            found = scan.instance.guard.scan(scan.segments, context)
            if not isinstance(found, list):
                found = await found
    except TimeoutError as exc:
        failure: Failure = overrun(timeout) if deadline.expired() else ("error", describe_error(exc))
        outcomes[index] = [], failure, time.perf_counter() - started
    except Exception as exc:  # as for inline scans: on_error, never a 500
        outcomes[index] = [], ("error", describe_error(exc)), time.perf_counter() - started
    else:
        outcomes[index] = scan.outcome(found, time.perf_counter() - started)


async def _pool_outcomes(in_pool: PoolRun, scans: dict[int, _Scan], outcomes: dict[int, Outcome]) -> None:
    for index, done in (await in_pool.results()).items():
        if done.failure is None:
            outcomes[index] = scans[index].outcome(done.findings, done.seconds)
        else:
            outcomes[index] = [], done.failure, done.seconds


def _valid_findings(findings: Sequence[Finding], segments: Sequence[Segment],
                    documents: Sequence[str] = ()) -> list[Finding]:
    """Drop findings whose segment index or span is out of range, rather than crash the request.
    A finding in a document (``Finding.document``) is checked against ``documents`` instead; a
    cached scan passes none, since a cacheable guard's findings may not depend on them."""
    valid = []
    for f in findings:
        if f.document is not None:
            if f.segment != -1 or not 0 <= f.document < len(documents):
                log.warning("dropped finding %s: document %d out of range", f.label, f.document)
                continue
            length = len(documents[f.document])
        elif not 0 <= f.segment < len(segments):
            log.warning("dropped finding %s: segment %d out of range", f.label, f.segment)
            continue
        else:
            length = len(segments[f.segment].text)
        spanned = f.start is not None or f.end is not None
        if spanned and (f.start is None or f.end is None or not 0 <= f.start < f.end <= length):
            log.warning("dropped finding %s: span out of range", f.label)
            continue
        valid.append(f)
    return valid
