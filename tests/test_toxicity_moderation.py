"""guardproxy/guards/toxicity/moderation.py against the demo upstream's /v1/moderations."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from guardproxy.demo.moderations import CATEGORIES, HIT_SCORE
from guardproxy.guards import GuardContext, Segment, UpstreamCallError
from guardproxy.guards.toxicity.config import ToxicityConfig
from guardproxy.guards.toxicity.guard import ToxicityGuard
from guardproxy.guards.toxicity.moderation import ModerationUnavailable
from guardproxy.proxy.upstream import GuardUpstreamClient, create_client
from tests.servers import ThreadedServer


class RecordingClient:
    def __init__(self, inner: GuardUpstreamClient) -> None:
        self.inner = inner
        self.bodies: list[dict[str, Any]] = []

    async def post_json(self, path: str, body: Any, timeout: float) -> Any:
        self.bodies.append(dict(body))
        return await self.inner.post_json(path, body, timeout)


@pytest.fixture
async def upstream(upstream_server: ThreadedServer) -> AsyncIterator[RecordingClient]:
    client = create_client(2.0, 5.0, 4)
    try:
        yield RecordingClient(GuardUpstreamClient(client, upstream_server.url + "/v1", "Bearer sk-test"))
    finally:
        await client.aclose()


def context(upstream: Any) -> GuardContext:
    return GuardContext("input", upstream=upstream)


def test_demo_answers_in_the_openai_shape(upstream_server: ThreadedServer) -> None:
    body = httpx.post(upstream_server.url + "/v1/moderations",
                      json={"input": ["they are vermin", "nice weather"]}).json()
    assert body["id"].startswith("modr-") and body["model"] == "omni-moderation-latest"
    first, second = body["results"]
    assert first["flagged"] is True and first["categories"]["hate"] is True
    assert first["category_scores"]["hate"] == HIT_SCORE
    assert set(first["categories"]) == set(CATEGORIES) == set(first["category_scores"])
    assert second["flagged"] is False and max(second["category_scores"].values()) < 0.01


async def test_moderation_detector_reports_the_flagged_sentence_and_its_category(upstream: RecordingClient) -> None:
    guard = ToxicityGuard(ToxicityConfig(detector="moderation", moderation_model="demo-moderation"))
    assert guard.kind == "io" and not guard.cacheable
    text = "The meeting went well today. Those people are vermin and must go. See you tomorrow then."
    findings = await guard.scan([Segment("Good morning to the whole team."), Segment(text)],  # type: ignore[misc]
                                context(upstream))
    assert len(findings) == 1
    finding = findings[0]
    assert finding.label == "hate" and finding.score == HIT_SCORE and finding.segment == 1
    assert text[finding.start:finding.end] == "Those people are vermin and must go."
    assert len(upstream.bodies) == 1, "every window of every segment goes in one call"
    assert upstream.bodies[0]["model"] == "demo-moderation"
    assert len(upstream.bodies[0]["input"]) == 4


async def test_moderation_threshold_applies_to_category_scores(upstream: RecordingClient) -> None:
    strict = ToxicityGuard(ToxicityConfig(detector="moderation", threshold=0.0001))
    assert await strict.scan([Segment("A perfectly ordinary sentence.")], context(upstream))  # type: ignore[misc]
    lenient = ToxicityGuard(ToxicityConfig(detector="moderation"))
    assert await lenient.scan([Segment("A perfectly ordinary sentence.")], context(upstream)) == []  # type: ignore[misc]


async def test_moderation_without_an_upstream_raises() -> None:
    guard = ToxicityGuard(ToxicityConfig(detector="moderation"))
    with pytest.raises(ModerationUnavailable):
        await guard.scan([Segment("Those people are vermin.")], GuardContext("input"))  # type: ignore[misc]


def test_the_local_detector_runs_in_the_pool() -> None:
    guard = ToxicityGuard(ToxicityConfig())
    assert guard.kind == "cpu" and guard.cacheable


class FixedAnswer:
    def __init__(self, answer: Any) -> None:
        self.answer = answer

    async def post_json(self, path: str, body: Any, timeout: float) -> Any:
        return self.answer


@pytest.mark.parametrize("answer", [{"results": []}, {"nothing": 1}, {"results": [{"flagged": True}]}])
async def test_a_malformed_answer_is_an_upstream_error(answer: Any) -> None:
    guard = ToxicityGuard(ToxicityConfig(detector="moderation"))
    with pytest.raises(UpstreamCallError):
        await guard.scan([Segment("Those people are vermin.")], context(FixedAnswer(answer)))  # type: ignore[misc]
