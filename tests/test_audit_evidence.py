"""What a request leaves for the trail: findings with their paths, and text with every found span masked."""

from __future__ import annotations

from guardproxy.audit.evidence import RequestEvidence
from guardproxy.engine import Decision, GuardFailure
from guardproxy.guards import Segment

SEGMENTS = [Segment("Call Maria Gonzalez at 555-0100 about the invoice", ("messages", 0, "content"), "user"),
            Segment("card 4111 1111 1111 1111", ("messages", 1, "content"), "user")]


def _kept(decisions: list[Decision], failures: list[GuardFailure] | None = None,
          segments: bool = True) -> RequestEvidence:
    evidence = RequestEvidence(audit=True, shadows=False, keep_text=True, keep_segments=segments)
    evidence.stage("input", decisions, failures or [], SEGMENTS)
    return evidence


def test_values_are_masked_whatever_the_action_or_mode_and_judged_text_stays_readable() -> None:
    decisions = [
        Decision("pii", "pii", "PERSON", 0.85, 0, 5, 19, "redact", "enforce", "<PERSON_1>", True),
        Decision("pii", "watch", "PHONE_NUMBER", 0.7, 0, 23, 31, "flag", "enforce"),  # a value only flagged
        Decision("keywords", "trial", "CREDIT_CARD", 0.9, 1, 5, 24, "redact", "monitor"),  # redact, not applied
        Decision("toxicity", "tox", "toxic", 0.6, 0, None, None, "flag", "enforce"),  # a whole-segment flag
        Decision("keywords", "words", "invoice", 1.0, 0, 42, 49, "block", "enforce"),  # a banned word: kept
    ]
    evidence = _kept(decisions)
    stage = evidence.stages["input"]
    assert stage.verdict == "blocked"
    assert stage.text is not None
    assert [t.text for t in stage.text] == ["Call <PERSON_1> at [PHONE_NUMBER] about the invoice", "card [CREDIT_CARD]"]
    assert [(t.path, t.role) for t in stage.text] == [(["messages", 0, "content"], "user"),
                                                     (["messages", 1, "content"], "user")]
    assert stage.findings["pii"][0].segment == ["messages", 0, "content"]
    assert (stage.findings["trial"][0].start, stage.findings["trial"][0].end) == (5, 24)
    assert stage.segments == SEGMENTS  # raw, for the shadow only


def test_a_whole_segment_redaction_replaces_the_segment() -> None:
    stage = _kept([Decision("secrets", "s", "KEY", 1.0, 1, None, None, "redact", "enforce")]).stages["input"]
    assert stage.text is not None and stage.text[1].text == "[KEY]"


def test_no_text_is_kept_for_a_stage_where_a_guard_failed() -> None:
    failure = GuardFailure("pii", "pii", "timeout", "past 2000 ms", blocked=False)
    stage = _kept([], [failure]).stages["input"]
    assert stage.text is None and stage.verdict == "flagged"


def test_nothing_raw_is_kept_without_a_shadow_and_no_text_without_the_policy_asking() -> None:
    evidence = RequestEvidence(audit=True, shadows=False)
    evidence.stage("input", [], [], SEGMENTS)
    assert evidence.stages["input"].text is None and evidence.stages["input"].segments is None


def test_a_failing_guards_block_is_no_finding_but_a_document_finding_is() -> None:
    decisions = [Decision("pii", "pii", "guard_error", 1.0, -1, None, None, "block", "enforce"),
                 Decision("injection", "inj", "indirect_injection", 0.97, -1, 10, 40, "flag", "enforce",
                          document=2)]
    stage = _kept(decisions).stages["input"]
    assert "pii" not in stage.findings
    [found] = stage.findings["inj"]
    assert (found.document, found.segment, found.start) == (2, None, 10)
