"""The observed engine: every run reaches telemetry, with each entry's action under its chain name."""

from __future__ import annotations

from collections.abc import Mapping

from guardproxy.engine.core import ChainResult
from guardproxy.guards import GuardContext, Segment
from guardproxy.policy.loader import parse_policy
from guardproxy.telemetry.observed_engine import ObservedEngine

POLICY = parse_policy("""
version: 1
name: o
chains:
  default:
    output:
      - {guard: keywords, action: block, terms: [stop]}
      - {guard: keywords, action: redact, terms: [secret]}
      - {guard: keywords, action: flag, terms: [maybe]}
""", "o")


async def test_runs_of_part_of_a_chain_keep_the_chains_names() -> None:
    seen: list[tuple[ChainResult, Mapping[str, str]]] = []
    engine = ObservedEngine(1, lambda result, started_ns, actions: seen.append((result, actions)))
    entries = POLICY.chains["default"].output
    segments = [Segment("a secret, maybe")]
    await engine.run(POLICY, entries, segments, GuardContext("output"))
    await engine.run(POLICY, entries[1:], segments, GuardContext("output"), names=["keywords#2", "keywords#3"])
    engine.close()
    whole, part = seen
    assert whole[1] == {"keywords#1": "block", "keywords#2": "redact", "keywords#3": "flag"}
    assert part[1] == {"keywords#2": "redact", "keywords#3": "flag"}
    assert [d.name for d in part[0].decisions] == [d.name for d in whole[0].decisions] == ["keywords#2", "keywords#3"]
    assert [r.name for r in part[0].runs] == ["keywords#2", "keywords#3"]
