"""Findings in ``guardproxy.context`` documents (``Finding.document``): validated against the
request's documents, carried into decisions, never redacted, named in violations and check findings."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import pytest

from guardproxy.engine import Engine
from guardproxy.engine.check import findings_json
from guardproxy.guards import REGISTRY, Finding, GuardConfig, GuardContext, Segment
from guardproxy.guards.api import GuardKind
from guardproxy.policy.loader import parse_policy
from guardproxy.policy.schema import Policy
from guardproxy.proxy.decisions import violations


class DocumentConfig(GuardConfig):
    cached: bool = False


class DocumentGuard:
    """Reports the word "evil" wherever it is, in segments and documents, plus two findings in
    documents that do not exist or spans past a document's end."""

    Config: ClassVar[type[GuardConfig]] = DocumentConfig
    kind: ClassVar[GuardKind] = "inline"

    def __init__(self, config: DocumentConfig) -> None:
        self.cacheable = config.cached

    def warm(self) -> None:
        return None

    def scan(self, segments: Sequence[Segment], context: GuardContext) -> list[Finding]:
        found = [Finding("evil", 1.0, i, s.text.index("evil"), s.text.index("evil") + 4)
                 for i, s in enumerate(segments) if "evil" in s.text]
        found += [Finding("evil", 0.9, -1, d.index("evil"), d.index("evil") + 4, document=n)
                  for n, d in enumerate(context.documents) if "evil" in d]
        found += [Finding("bad", 1.0, -1, document=len(context.documents)),
                  Finding("bad", 1.0, -1, 0, 10_000, document=0), Finding("bad", 1.0, 0, document=0)]
        return found


@pytest.fixture(autouse=True)
def document_guard(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(REGISTRY, "documents", DocumentGuard)  # type: ignore[arg-type]


def policy(action: str, extra: str = "") -> Policy:
    return parse_policy("version: 1\nname: t\nchains:\n  default:\n    input:\n"
                        f"      - {{name: docs, guard: documents, action: {action}{extra}}}\n", "t")


async def run(p: Policy, texts: Sequence[str], documents: Sequence[str]):  # type: ignore[no-untyped-def]
    engine = Engine(1)
    segments = [Segment(t, ("messages", i, "content"), "user") for i, t in enumerate(texts)]
    result = await engine.run(p, p.chains["default"].input, segments, GuardContext("input", documents=tuple(documents)))
    engine.close()
    return result


async def test_a_document_finding_becomes_a_decision_naming_the_document() -> None:
    result = await run(policy("flag"), ["a clean question"], ["fine text", "an evil plan"])
    assert [(d.label, d.segment, d.document, d.start, d.end) for d in result.decisions] == [("evil", -1, 1, 3, 7)]
    assert result.verdict == "flagged"
    assert findings_json(result)[0]["document"] == 1


async def test_document_findings_are_never_redacted_and_segments_still_are() -> None:
    result = await run(policy("redact"), ["an evil question"], ["an evil plan"])
    assert sorted((d.segment, d.document) for d in result.decisions) == [(-1, 0), (0, None)]
    assert result.texts == ["an [evil] question"]
    assert set(result.redactions) == {0}


async def test_a_blocking_document_finding_is_named_in_the_violations() -> None:
    result = await run(policy("block"), ["an evil question", "fine"], ["fine", "an evil plan"])
    assert result.verdict == "blocked"
    assert violations(result.decisions, result.segments) == [
        {"guard": "documents", "name": "docs", "action": "block", "labels": ["evil"],
         "segments": ["messages.0.content"], "documents": [1]}]
    assert "segments" not in violations(result.decisions)[0]  # without the segments, no paths


async def test_a_cacheable_guard_may_not_report_documents() -> None:
    result = await run(policy("flag", ", cached: true"), ["an evil question"], ["an evil plan"])
    assert [(d.segment, d.document) for d in result.decisions] == [(0, None)]
