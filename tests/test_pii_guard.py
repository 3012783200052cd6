"""guard: pii: styles, allow/deny, custom patterns, numbering, cache, no network."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator

import pytest

from guardproxy.engine import ChainResult, Engine
from guardproxy.guards import GuardContext, Segment
from guardproxy.guards.pii.config import PiiConfig
from guardproxy.guards.pii.guard import PiiGuard
from guardproxy.policy.loader import PolicyError, parse_policy
from guardproxy.proxy.restoration import Restorer


@pytest.fixture(scope="module")
def engine() -> Iterator[Engine]:
    # The spaCy model and the Rampart model load once per process; load them here, not inside the
    # first test's guard timeout (the proxy warms its guards before serving).
    PiiGuard(PiiConfig()).warm()
    engine = Engine(2)
    yield engine
    engine.close()


def run(engine: Engine, entry: str, *texts: str, stage: str = "input") -> ChainResult:
    policy = parse_policy(f"version: 1\nname: t\nchains:\n  default:\n    {stage}:\n      - {entry}\n", "t")
    entries = getattr(policy.chains["default"], stage)
    segments = [Segment(t, ("messages", i, "content"), "user") for i, t in enumerate(texts)]
    return asyncio.run(engine.run(policy, entries, segments, GuardContext(stage)))  # type: ignore[arg-type]


TEXT = "I am Maria Gonzalez, write to maria.gonzalez@example.org or call 415-555-0132."


def test_placeholder_style_numbers_by_first_appearance_across_messages(engine: Engine) -> None:
    result = run(engine, "{guard: pii, action: redact}", TEXT, "Maria Gonzalez again, and Tom Baker too.")
    assert result.verdict == "redacted"
    assert result.texts == ["I am <PERSON_1>, write to <EMAIL_ADDRESS_1> or call <PHONE_NUMBER_1>.",
                            "<PERSON_1> again, and <PERSON_2> too."]


def test_numbering_is_stable_when_history_grows(engine: Engine) -> None:
    first = run(engine, "{guard: pii, action: redact}", "Hi, I'm Maria Gonzalez.")
    second = run(engine, "{guard: pii, action: redact}", "Hi, I'm Maria Gonzalez.", "Thanks <PERSON_1>.",
                 "Please also email Tom Baker.")
    assert first.texts[0] == second.texts[0] == "Hi, I'm <PERSON_1>."
    assert second.texts[2] == "Please also email <PERSON_2>."
    assert second.texts[1] == "Thanks <PERSON_1>."  # a placeholder is not itself personal data


@pytest.mark.parametrize(("style", "expected"), [
    ("type", "I am <PERSON>, write to <EMAIL_ADDRESS> or call <PHONE_NUMBER>."),
    ("mask", "I am ****, write to **** or call ****."),
])
def test_type_and_mask_styles(engine: Engine, style: str, expected: str) -> None:
    assert run(engine, f"{{guard: pii, action: redact, style: {style}}}", TEXT).texts == [expected]


def test_hash_style_is_salted_and_stable(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PII_SALT", "s3cret")
    entry = "{guard: pii, action: redact, style: hash, hash_salt_env: PII_SALT, entities: [EMAIL_ADDRESS]}"
    a = run(engine, entry, "mail a@example.com").texts[0]
    b = run(engine, entry, "again a@example.com").texts[0]
    assert a.startswith("mail <EMAIL_ADDRESS:") and a.removeprefix("mail ") == b.removeprefix("again ")
    assert "a@example.com" not in a
    config = PiiConfig(style="hash", hash_salt_env="PII_SALT", entities=["EMAIL_ADDRESS"])
    same_salt = PiiGuard(config).scan([Segment("mail a@example.com")], GuardContext("input"))
    monkeypatch.setenv("PII_SALT", "other")
    other_salt = PiiGuard(config).scan([Segment("mail a@example.com")], GuardContext("input"))
    assert "mail " + (same_salt[0].replacement or "") == a
    assert other_salt[0].replacement != same_salt[0].replacement


def test_allow_deny_and_custom_patterns(engine: Engine) -> None:
    entry = ("{guard: pii, action: redact, style: type, allow: [Jordan Lee], deny: [Project Nightjar], "
             "patterns: [{name: EMPLOYEE_ID, regex: 'EMP-\\d{6}', score: 0.9, context: [employee]}]}")
    result = run(engine, entry, "Jordan Lee and Sam Carter discussed Project Nightjar for employee EMP-204811.")
    assert result.texts == ["Jordan Lee and <PERSON> discussed <DENY_LIST> for employee <EMPLOYEE_ID>."]
    assert {d.label for d in result.decisions} == {"PERSON", "DENY_LIST", "EMPLOYEE_ID"}


def test_entities_restrict_what_is_reported(engine: Engine) -> None:
    result = run(engine, "{guard: pii, action: flag, entities: [EMAIL_ADDRESS]}", TEXT)
    assert [d.label for d in result.decisions] == ["EMAIL_ADDRESS"]
    assert result.verdict == "flagged" and result.texts == [TEXT]


def test_pattern_mode_finds_patterns_but_no_names(engine: Engine) -> None:
    result = run(engine, "{guard: pii, action: redact, nlp: pattern}", TEXT)
    assert result.texts == ["I am Maria Gonzalez, write to <EMAIL_ADDRESS_1> or call <PHONE_NUMBER_1>."]


def test_placeholder_round_trip(engine: Engine) -> None:
    result = run(engine, "{guard: pii, action: redact, restore: true}", TEXT)
    restorer = Restorer(result.restorations())
    answer = "Dear <PERSON_1>, we will email <EMAIL_ADDRESS_1>. <PERSON_2> is unknown."
    assert restorer.apply(answer, []) == \
        "Dear Maria Gonzalez, we will email maria.gonzalez@example.org. <PERSON_2> is unknown."


def test_restore_is_only_for_placeholders() -> None:
    with pytest.raises(PolicyError, match="restore: true needs style: placeholder"):
        parse_policy("version: 1\nname: t\nchains:\n  default:\n    input:\n"
                     "      - {guard: pii, action: redact, restore: true, style: mask}\n", "t")


def test_invalid_keys_are_reported() -> None:
    for bad, message in [("language: fr", "no model is shipped"), ("entity_thresholds: {PERSON: 2}", "between 0"),
                         ("patterns: [{name: X, regex: '('}]", "is not a valid regular expression"),
                         ("styel: mask", "unknown key")]:
        with pytest.raises(PolicyError, match=message):
            parse_policy("version: 1\nname: t\nchains:\n  default:\n    input:\n"
                         f"      - {{guard: pii, action: redact, {bad}}}\n", "t")


def test_cache_serves_repeated_history_without_reanalysis() -> None:
    guard = PiiGuard(PiiConfig())
    guard.warm()
    history = [f"Message {i} from Maria Gonzalez about order {i}." for i in range(20)]
    first = guard.detect(history)
    misses = guard._cache.misses
    second = guard.detect(history)
    assert second == first
    assert guard._cache.misses == misses  # nothing analysed twice
    assert guard._cache.hits >= 20
    assert all(isinstance(key, bytes) for key in guard._cache._items)  # digests, never text


def test_no_network_during_analysis(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the PII guard tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    guard = PiiGuard(PiiConfig(entities=["EMAIL_ADDRESS", "URL"], cache_size=0))
    guard.warm()
    found = guard.detect(["write to someone@sub.example.co.uk or see https://example.museum/x"])
    assert {d.entity for d in found[0]} >= {"EMAIL_ADDRESS"}
