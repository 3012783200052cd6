"""guard: topics, ``calibration: traffic``: the background from package data, the shift, and the score it gives."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import guardproxy.guards.topics as topics_package
from guardproxy.guards.base import Finding, GuardContext, Segment
from guardproxy.guards.topics.calibration import TrafficCalibration, background_texts, background_vectors
from guardproxy.guards.topics.config import DEFAULT_THRESHOLD, TopicsConfig
from guardproxy.guards.topics.guard import TopicsGuard

BANKING: dict[str, Any] = {
    "name": "banking",
    "description": "Banking: account balances, transfers between accounts, bills, direct deposits and bank fees.",
    "examples": ["How much money is in my checking account?", "Transfer 200 dollars from savings to checking.",
                 "Pay my electricity bill from my bank account.", "Why did the bank charge me an overdraft fee?",
                 "When does my direct deposit arrive?"],
}
ON_TOPIC = ["Move fifty dollars from my savings into checking.", "What is the balance of my savings account?",
            "I need to pay the water bill out of my bank account.", "Was I charged a monthly fee by my bank?",
            "Has my paycheck been deposited into my account yet?"]
OFF_TOPIC = ["How long should I boil an egg?", "Set an alarm for seven tomorrow.", "Play some jazz in the kitchen.",
             "What's the weather in Lisbon on Friday?", "Tell me a joke about penguins."]
CONTEXT = GuardContext("input")


def guard(**settings: Any) -> TopicsGuard:
    g = TopicsGuard(TopicsConfig(**{"topics": [BANKING], **settings}))
    g.warm()
    return g


def scores(g: TopicsGuard, *texts: str) -> list[float]:
    """Each text's score (0 when the guard made no finding for it)."""
    findings = g.scan([Segment(text, ("messages", i, "content"), "user") for i, text in enumerate(texts)], CONTEXT)
    assert isinstance(findings, list)
    best = [0.0] * len(texts)
    for finding in findings:
        assert isinstance(finding, Finding)
        best[finding.segment] = max(best[finding.segment], finding.score)
    return best


def test_background_ships_in_the_package_and_embeds_without_network() -> None:
    path = Path(topics_package.__file__).parent / "data" / "background.txt"
    assert path.is_file()
    texts = background_texts()
    assert len(texts) >= 200 and not any(t.startswith("#") for t in texts)
    assert background_vectors().shape == (len(texts), 384)


def test_on_topic_short_queries_and_a_long_document_fire_and_off_topic_text_does_not() -> None:
    g = guard()
    assert g.config.calibration == "traffic"
    assert all(score >= DEFAULT_THRESHOLD for score in scores(g, *ON_TOPIC))
    assert all(score < DEFAULT_THRESHOLD for score in scores(g, *OFF_TOPIC))
    mixed = [sentence for pair in zip(ON_TOPIC, OFF_TOPIC, strict=True) for sentence in pair]
    [long_document] = scores(g, " ".join(mixed))
    assert long_document >= DEFAULT_THRESHOLD
    [off_document] = scores(g, " ".join(OFF_TOPIC * 2))
    assert off_document < DEFAULT_THRESHOLD


def test_on_traffic_like_the_background_the_score_is_the_cosine() -> None:
    calibrated, plain = guard(threshold=0.0), guard(threshold=0.0, calibration="none")
    for text in [*ON_TOPIC, *OFF_TOPIC]:
        assert scores(calibrated, text) == pytest.approx(scores(plain, text), abs=0.01)


def test_traffic_near_the_topic_lowers_its_scores_by_at_most_the_cap() -> None:
    g, plain = guard(threshold=0.0, calibration_window=64), guard(threshold=0.0, calibration="none")
    text = "Why is there a fee on my bank statement?"
    before = scores(g, text)[0]
    scores(g, *(f"{text} (ticket {i})" for i in range(13) for text in ON_TOPIC))  # 65 banking texts
    after = scores(g, text)[0]
    assert before - 0.2 - 1e-3 <= after < before - 0.05
    assert scores(plain, text)[0] == pytest.approx(before, abs=1e-3)


def test_shift_follows_the_median_and_stays_within_zero_and_the_cap() -> None:
    background = np.full((40, 2), 0.1, dtype=np.float32)
    calibration = TrafficCalibration(background, window=20, max_shift=0.2)
    assert calibration.shifts().tolist() == [0.0, 0.0]
    calibration.observe(np.array([[0.25, 0.0]] * 11, dtype=np.float32))  # a majority of the window
    assert calibration.shifts() == pytest.approx([0.15, 0.0])
    calibration.observe(np.array([[0.9, 0.9]] * 20, dtype=np.float32))
    assert calibration.shifts() == pytest.approx([0.2, 0.2])


def test_a_request_does_not_lower_its_own_score() -> None:
    g, plain = guard(threshold=0.0, calibration_window=16), guard(threshold=0.0, calibration="none")
    batch = [f"{text} (ticket {i})" for i in range(4) for text in ON_TOPIC]  # more texts than the window
    assert scores(g, *batch) == pytest.approx(scores(plain, *batch), abs=1e-3)


def test_a_resent_text_counts_once() -> None:
    g = guard(threshold=0.0, calibration_window=16)
    scores(g, *ON_TOPIC)
    second = scores(g, *ON_TOPIC)
    for _ in range(40):  # a chat history resent every turn moves the sample once, on its first turn
        assert scores(g, *ON_TOPIC) == second
    distinct = [f"{text} (turn {i})" for i in range(8) for text in ON_TOPIC]
    scores(g, *distinct)
    assert scores(g, *ON_TOPIC)[0] < second[0] - 0.05  # as many new texts do move it


def test_a_text_repeated_in_one_request_gets_a_finding_for_each_segment() -> None:
    first, second, other = scores(guard(), ON_TOPIC[0], ON_TOPIC[0], OFF_TOPIC[0])
    assert first == second >= DEFAULT_THRESHOLD and other == 0.0


def test_only_uncalibrated_scores_are_cacheable() -> None:
    assert not guard().cacheable
    assert guard(calibration="none").cacheable
    assert TopicsGuard(TopicsConfig(topics=[{**BANKING, "keywords": ["bank"]}], method="keywords")).cacheable
