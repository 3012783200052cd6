"""guardproxy/guards/toxicity/moderation.py against the demo upstream's /v1/moderations."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from guardproxy.demo.moderations import CATEGORIES, HIT_SCORE
from guardproxy.guards import GuardContext, Segment, UpstreamCallError
from guardproxy.guards.toxicity.config import ToxicityConfig
from guardproxy.guards.toxicity.guard import ToxicityGuard
from guardproxy.guards.toxicity.moderation import ModerationUnavailable
from guardproxy.proxy.upstream import LoopUpstreamClient, create_client
from tests.servers import ThreadedServer


class RecordingClient:
    def __init__(self, inner: LoopUpstreamClient) -> None:
        self.inner = inner
        self.bodies: list[dict[str, Any]] = []

    def post_json(self, path: str, body: Any, timeout: float) -> Any:
        self.bodies.append(dict(body))
        return self.inner.post_json(path, body, timeout)


@pytest.fixture
def upstream(upstream_server: ThreadedServer) -> Iterator[RecordingClient]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    client = create_client(2.0, 5.0, 4)
    try:
        yield RecordingClient(LoopUpstreamClient(client, loop, upstream_server.url + "/v1", "Bearer sk-test"))
    finally:
        asyncio.run_coroutine_threadsafe(client.aclose(), loop).result(5)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()


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


def test_moderation_detector_reports_the_flagged_sentence_and_its_category(upstream: RecordingClient) -> None:
    guard = ToxicityGuard(ToxicityConfig(detector="moderation", moderation_model="demo-moderation"))
    text = "The meeting went well today. Those people are vermin and must go. See you tomorrow then."
    findings = guard.scan([Segment("Good morning to the whole team."), Segment(text)], context(upstream))
    assert len(findings) == 1
    finding = findings[0]
    assert finding.label == "hate" and finding.score == HIT_SCORE and finding.segment == 1
    assert text[finding.start:finding.end] == "Those people are vermin and must go."
    assert len(upstream.bodies) == 1, "every window of every segment goes in one call"
    assert upstream.bodies[0]["model"] == "demo-moderation"
    assert len(upstream.bodies[0]["input"]) == 4


def test_moderation_threshold_applies_to_category_scores(upstream: RecordingClient) -> None:
    strict = ToxicityGuard(ToxicityConfig(detector="moderation", threshold=0.0001))
    assert strict.scan([Segment("A perfectly ordinary sentence.")], context(upstream))
    lenient = ToxicityGuard(ToxicityConfig(detector="moderation"))
    assert lenient.scan([Segment("A perfectly ordinary sentence.")], context(upstream)) == []


def test_moderation_without_an_upstream_raises() -> None:
    guard = ToxicityGuard(ToxicityConfig(detector="moderation"))
    with pytest.raises(ModerationUnavailable):
        guard.scan([Segment("Those people are vermin.")], GuardContext("input"))


class FixedAnswer:
    def __init__(self, answer: Any) -> None:
        self.answer = answer

    def post_json(self, path: str, body: Any, timeout: float) -> Any:
        return self.answer


@pytest.mark.parametrize("answer", [{"results": []}, {"nothing": 1}, {"results": [{"flagged": True}]}])
def test_a_malformed_answer_is_an_upstream_error(answer: Any) -> None:
    guard = ToxicityGuard(ToxicityConfig(detector="moderation"))
    with pytest.raises(UpstreamCallError):
        guard.scan([Segment("Those people are vermin.")], context(FixedAnswer(answer)))
