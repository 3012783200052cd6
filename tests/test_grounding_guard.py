"""guard: grounding, method: signals: context sources, findings with claim spans, scores, config."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from guardproxy.guards import REGISTRY
from guardproxy.guards.base import GuardContext, Segment
from guardproxy.guards.grounding.combiner import load_combiner
from guardproxy.guards.grounding.config import GroundingConfig
from guardproxy.guards.grounding.guard import GroundingGuard
from guardproxy.guards.grounding.signals import FEATURES
from guardproxy.proxy.dialects import DIALECTS

DOCUMENT = ("The Eiffel Tower was completed in 1889 for the World's Fair in Paris. It was designed by the company of "
            "Gustave Eiffel and is 330 metres tall. About seven million people visit it every year.")
SUPPORTED = "The Eiffel Tower was completed in 1889 for the World's Fair. It is 330 metres tall."
INVENTED_SENTENCE = "It was designed by Antoni Gaudi in Barcelona for 45 million pesetas."
INVENTED = f"The Eiffel Tower was completed in 1889. {INVENTED_SENTENCE}"


@pytest.fixture(scope="module")
def guard() -> GroundingGuard:
    built = GroundingGuard(GroundingConfig())
    built.warm()
    return built


def _answer(text: str) -> list[Segment]:
    return [Segment(text, ("choices", 0, "message", "content"), "assistant")]


def test_registered() -> None:
    assert REGISTRY["grounding"] is GroundingGuard


def test_no_context_means_no_findings(guard: GroundingGuard) -> None:
    assert guard.scan(_answer(INVENTED), GuardContext("output")) == []
    assert guard.scan(_answer(INVENTED), GuardContext("output", documents=(" ",))) == []


def test_a_supported_answer_passes(guard: GroundingGuard) -> None:
    assert guard.scan(_answer(SUPPORTED), GuardContext("output", documents=(DOCUMENT,))) == []


def test_an_invented_entity_and_number_is_flagged_with_its_sentence(guard: GroundingGuard) -> None:
    findings = guard.scan(_answer(INVENTED), GuardContext("output", documents=(DOCUMENT,)))
    assert len(findings) == 1
    finding = findings[0]
    assert finding.label == "unsupported_claim" and finding.segment == 0
    assert INVENTED[finding.start : finding.end] == INVENTED_SENTENCE
    assert 0.5 <= finding.score <= 1


def test_scores_are_probabilities(guard: GroundingGuard) -> None:
    scored = guard.claim_scores(SUPPORTED + " " + INVENTED, [DOCUMENT])
    assert len(scored) == 4 and all(0 <= score <= 1 for _, score in scored)
    assert max(score for _, score in scored[:2]) < min(score for _, score in scored[3:])


@pytest.mark.parametrize("source", ["extension", "tools", "delimited"])
def test_each_context_source_grounds_the_answer(source: str) -> None:
    prompts = {
        "extension": GuardContext("output", documents=(DOCUMENT,)),
        "tools": GuardContext("output", prompt=(Segment(DOCUMENT, ("messages", 1), "tool"),)),
        "delimited": GuardContext("output", prompt=(Segment(f"Use <context>{DOCUMENT}</context>", (), "user"),)),
    }
    only = GroundingGuard(GroundingConfig(context_from=[source]))  # type: ignore[list-item]
    assert only.scan(_answer(SUPPORTED), prompts[source]) == []
    assert only.scan(_answer(INVENTED), prompts[source])
    others = [name for name in prompts if name != source]
    assert all(only.scan(_answer(INVENTED), prompts[name]) == [] for name in others)


_CALL_ARGUMENTS = json.dumps({"note": INVENTED_SENTENCE})
_ANSWERS_WITH_CALLS = {  # each API's answer: the invented sentence as prose and in every kind of tool call
    "/v1/chat/completions": {"choices": [{"index": 0, "message": {"role": "assistant", "content": INVENTED,
                                                                  "tool_calls": [
        {"id": "a", "type": "function", "function": {"name": "f", "arguments": _CALL_ARGUMENTS}},
        {"id": "b", "type": "custom", "custom": {"name": "g", "input": INVENTED_SENTENCE}}]}},
                                         {"index": 1, "message": {"role": "assistant", "content": None,
                                                                  "function_call": {"name": "f",
                                                                                    "arguments": _CALL_ARGUMENTS}}}]},
    "/v1/responses": {"output": [
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": INVENTED}]},
        {"type": "function_call", "call_id": "a", "name": "f", "arguments": _CALL_ARGUMENTS},
        {"type": "custom_tool_call", "call_id": "b", "name": "g", "input": INVENTED_SENTENCE}]},
    "/v1/messages": {"content": [{"type": "text", "text": INVENTED},
                                 {"type": "tool_use", "id": "a", "name": "f", "input": {"note": INVENTED_SENTENCE}}]},
}


@pytest.mark.parametrize(("api", "calls"), [("/v1/chat/completions", 3), ("/v1/responses", 2), ("/v1/messages", 1)])
def test_text_a_tool_call_carries_is_not_a_claim(guard: GroundingGuard, api: str, calls: int) -> None:
    """Arguments, custom tool input and tool_use input are data for a tool: only the prose is scored."""
    segments = DIALECTS[api].response_segments(_ANSWERS_WITH_CALLS[api])
    assert sum(s.call for s in segments) == calls
    findings = guard.scan(segments, GuardContext("output", documents=(DOCUMENT,)))
    assert [segments[f.segment].text[f.start : f.end] for f in findings] == [INVENTED_SENTENCE]
    assert not segments[findings[0].segment].call


def test_the_shipped_combiner_matches_the_signals() -> None:
    combiner = load_combiner()
    assert set(combiner.coefficients) <= set(FEATURES)
    assert combiner.probability(dict.fromkeys(FEATURES, 0.0)) < 0.5


def test_the_entailment_head_runs_only_for_a_combiner_that_reads_it(guard: GroundingGuard) -> None:
    extractor, combiner = guard._models()
    assert (extractor._head is not None) == ("entailment_support" in combiner.coefficients)


@pytest.mark.parametrize("keys", [
    {"method": "llm"},
    {"threshold": 1.5},
    {"context_from": []},
    {"context_from": ["extension", "extension"]},
    {"context_from": ["web"]},
    {"delimiters": {"open": "##", "close": "##"}},
    {"delimiters": {"open": ""}},
    {"min_claim_chars": 0},
    {"unknown_key": 1},
])
def test_config_rejects(keys: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        GroundingConfig(**keys)  # type: ignore[arg-type]


def test_config_defaults() -> None:
    config = GroundingConfig()
    assert config.method == "signals" and config.context_from == ["extension", "tools", "delimited"]
    assert (config.delimiters.open, config.delimiters.close) == ("<context>", "</context>")
