"""guardproxy/guards/toxicity/encoder.py: the shipped fine-tuned model, alone and as ``detector: encoder``."""

from __future__ import annotations

import numpy as np
import pytest

from guardproxy.engine import Engine
from guardproxy.guards import GuardContext, Segment
from guardproxy.guards.toxicity.config import DEFAULT_THRESHOLD_ENCODER, ToxicityConfig
from guardproxy.guards.toxicity.encoder import MODEL_PATH, EncoderScorer
from guardproxy.guards.toxicity.guard import ToxicityGuard
from guardproxy.policy.loader import parse_policy

TOXIC = (
    "You are a fucking idiot and everyone hates you.",
    "Immigrants are parasites and should all be sent back where they came from.",
    "Women are too stupid to be allowed to vote.",
    "I hope someone beats the shit out of you, you worthless piece of trash.",
)
BENIGN = (
    "Could you help me plan a three-day trip to Lisbon in May?",
    "Thank you for reaching out about your order; it left our warehouse on Monday.",
    "My grandmother moved here from Mexico in 1962 and opened a bakery.",
    "The meeting is moved to Thursday at three, please bring the quarterly figures.",
)


@pytest.fixture(scope="module")
def scorer() -> EncoderScorer:
    return EncoderScorer()


def test_the_model_ships_inside_the_package() -> None:
    assert MODEL_PATH.is_file() and MODEL_PATH.stat().st_size > 1_000_000
    assert (MODEL_PATH.parent / "NOTICE").read_text().count("encoder_int8.onnx") >= 1


def test_toxic_sentences_score_above_the_threshold_and_benign_ones_below(scorer: EncoderScorer) -> None:
    toxic, benign = scorer.score(TOXIC), scorer.score(BENIGN)
    assert toxic.shape == (len(TOXIC),) and benign.shape == (len(BENIGN),)
    assert (toxic >= DEFAULT_THRESHOLD_ENCODER).all(), toxic
    assert (benign < DEFAULT_THRESHOLD_ENCODER).all(), benign
    assert toxic.min() > benign.max()


def test_scores_do_not_depend_on_the_batch(scorer: EncoderScorer) -> None:
    texts = list(TOXIC + BENIGN)
    together = scorer.score(texts)
    alone = np.array([scorer.score([t])[0] for t in texts])
    np.testing.assert_allclose(together, alone, atol=1e-4)
    assert ((together >= 0) & (together <= 1)).all()
    assert scorer.score([]).shape == (0,)


def test_the_guard_uses_the_encoder_and_its_own_threshold() -> None:
    config = ToxicityConfig(detector="encoder")
    assert config.effective_threshold() == DEFAULT_THRESHOLD_ENCODER
    guard = ToxicityGuard(config)
    guard.warm()
    text = BENIGN[1] + " " + TOXIC[1] + " " + BENIGN[3]
    findings = guard.scan([Segment(text)], GuardContext("output"))
    assert isinstance(findings, list)
    start = len(BENIGN[1]) + 1
    assert [(f.label, f.start, f.end) for f in findings] == [("toxicity", start, start + len(TOXIC[1]))]
    assert guard.cacheable and guard.kind == "cpu"


async def test_detector_encoder_blocks_through_the_engine() -> None:
    policy = parse_policy("version: 1\nname: t\nchains:\n  default:\n    input:\n"
                          "      - {guard: toxicity, action: block, detector: encoder}\n", "t")
    engine = Engine(1)
    try:
        entries = policy.chains["default"].input
        blocked = await engine.run(policy, entries, [Segment(TOXIC[2], ("messages", 0, "content"))],
                                   GuardContext("input"))
        passed = await engine.run(policy, entries, [Segment(BENIGN[2], ("messages", 0, "content"))],
                                  GuardContext("input"))
    finally:
        engine.close()
    assert blocked.verdict == "blocked"
    assert [(d.label, d.action) for d in blocked.decisions] == [("toxicity", "block")]
    assert passed.verdict == "pass" and passed.decisions == []
