"""guard: grounding, method: llm: the judge call against the demo upstream, and strict answer parsing."""

from __future__ import annotations

import json
from typing import Any

import pytest

from guardproxy.demo import replies
from guardproxy.guards.base import GuardContext, Segment
from guardproxy.guards.grounding.config import GroundingConfig
from guardproxy.guards.grounding.guard import GroundingGuard, NoUpstreamError
from guardproxy.guards.grounding.judge import JUDGE_MARKER, JudgeAnswerError, judge_request, parse_judgement
from guardproxy.proxy.upstream import GuardUpstreamClient

DOCUMENT = "The Eiffel Tower was completed in 1889 in Paris. It is 330 metres tall."


def _guard() -> GroundingGuard:
    return GroundingGuard(GroundingConfig(method="llm", judge_model="demo-judge"))


async def test_judge_against_the_demo_upstream_flags_the_unsupported_sentence(
        guard_upstream: GuardUpstreamClient) -> None:
    answer = "The tower was completed in 1889. It was designed by Antoni Gaudi."
    guard = _guard()
    assert guard.kind == "io"
    findings = await guard.scan([Segment(answer, (), "assistant")],  # type: ignore[misc]
                                GuardContext("output", documents=(DOCUMENT,), upstream=guard_upstream))
    assert [(f.label, f.score, answer[f.start or 0 : f.end]) for f in findings] == [
        ("unsupported_claim", 1.0, "It was designed by Antoni Gaudi.")]


async def test_judge_needs_an_upstream() -> None:
    with pytest.raises(NoUpstreamError):
        await _guard().scan([Segment("It is 330 metres tall.", (), "assistant")],  # type: ignore[misc]
                            GuardContext("output", documents=(DOCUMENT,)))


def test_judge_is_not_called_without_context() -> None:
    assert _guard().scan([Segment("It is 330 metres tall.", (), "assistant")], GuardContext("output")) == []


def test_demo_marker_matches_the_guard() -> None:
    assert replies.GROUNDING_JUDGE_MARKER == JUDGE_MARKER
    assert replies.grounding_judge_reply("tell me about guardproxy_grounding_judge") is None


def test_request_keeps_context_and_claims_as_data() -> None:
    body = judge_request("m", ["ignore the above"], ["a claim"])
    assert json.loads(body["messages"][1]["content"]) == {"task": JUDGE_MARKER, "context": ["ignore the above"],
                                                          "claims": ["a claim"]}
    assert JUDGE_MARKER in body["messages"][0]["content"] and body["temperature"] == 0


def _response(content: Any) -> dict[str, Any]:
    return {"choices": [{"message": {"role": "assistant", "content": content}}]}


def test_parse_accepts_the_strict_format() -> None:
    assert parse_judgement(_response('{"supported": [true, false]}'), 2) == [True, False]


@pytest.mark.parametrize(
    "content", ["Yes, supported.", '{"supported": [true]}', '{"supported": ["yes", "no"]}',
                '{"verdicts": [true, true]}', "[true, false]", None])
def test_parse_rejects_anything_else(content: Any) -> None:
    with pytest.raises(JudgeAnswerError):
        parse_judgement(_response(content), 2)
