"""guard: secrets: each format found with its kind and exact span, look-alikes left alone, the
redaction text, the policy keys and their validation."""

from __future__ import annotations

import asyncio
import random
import sys
from importlib import resources
from pathlib import Path

import pytest
from pydantic import ValidationError

from guardproxy.engine import Engine
from guardproxy.guards import GuardContext, Segment
from guardproxy.guards.registry import REGISTRY
from guardproxy.guards.secrets.config import SecretsConfig
from guardproxy.guards.secrets.guard import SecretsGuard
from guardproxy.guards.secrets.rules import load_rules, shannon_entropy
from guardproxy.policy.loader import parse_policy

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from secrets_corpus import LOOKALIKES, SECRETS, positive

GUARD = SecretsGuard(SecretsConfig())

# One literal of each format the issue names: (text, secret, kind). Random strings in the vendors' shapes.
LITERALS = [
    ("key id AKIAQYLPMN5HHHFPZAM2 for the build", "AKIAQYLPMN5HHHFPZAM2", "aws_access_key"),
    ("aws_secret_access_key = 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", "kJ8x/Qm2Zr7pL0vN4bT9wE1cY6uH3sF5gA8dK2mR",
     "aws_secret_key"),
    ("export GITHUB_TOKEN=ghp_Zq8mR2vX7pL0nB4tK9wE1cY6uH3sF5gA8dJ2", "ghp_Zq8mR2vX7pL0nB4tK9wE1cY6uH3sF5gA8dJ2",
     "github_pat"),
    ("token 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 ok",
     "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",
     "github_fine_grained_pat"),
    ("gitlab: glpat-Xk9mQ2vL7pR4zT1wB8nC", "glpat-Xk9mQ2vL7pR4zT1wB8nC", "gitlab_pat"),
    ("SLACK=xoxb-123456789012-1234567890123-Ab8dEfG3IjK7MnOpQ2StUvWx",
     "xoxb-123456789012-1234567890123-Ab8dEfG3IjK7MnOpQ2StUvWx", "slack_bot_token"),
    ("my Stripe key is sk_live_4eC39HqLyjWDarjtT1zdp7dc.", "sk_live_4eC39HqLyjWDarjtT1zdp7dc", "stripe_key"),
    ("maps: AIzaSyDk3Q9xZ2mPq7Lr8vN0bT4wE1cY6uH3sF5", "AIzaSyDk3Q9xZ2mPq7Lr8vN0bT4wE1cY6uH3sF5", "google_api_key"),
    ("OPENAI_API_KEY=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",
     "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", "openai_api_key"),
    ("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 is my token", "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", "huggingface_token"),
    ("//registry.npmjs.org/:_authToken=npm_a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8",
     "npm_a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8", "npm_token"),
    ("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 is the key",
     "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", "sendgrid_api_key"),
    ("twilio SK0123456789abcdef0123456789abcdef here", "SK0123456789abcdef0123456789abcdef", "twilio_api_key"),
    ("redis://svc:Zk8%21mQ2vL7pR@cache.internal:6379/0", "Zk8%21mQ2vL7pR", "url_password"),
    ("password: Xk9#mQ2$vL7!pR4", "Xk9#mQ2$vL7!pR4", "password"),
    ('{"client_secret": "q8ZmR2vX7pL0nB4tK9wE1cY6uH3sF5gA"}', "q8ZmR2vX7pL0nB4tK9wE1cY6uH3sF5gA", "generic_secret"),
]


def kinds_at(text: str, guard: SecretsGuard = GUARD) -> list[tuple[str, str]]:
    return [(text[s:e], kind) for s, e, kind in guard.spans(text)]


@pytest.mark.parametrize(("text", "secret", "kind"), LITERALS, ids=[k for _, _, k in LITERALS])
def test_each_literal_format_is_found_with_its_kind_and_exact_span(text: str, secret: str, kind: str) -> None:
    assert kinds_at(text) == [(secret, kind)]


@pytest.mark.parametrize("kind", sorted(SECRETS))
def test_each_generated_kind_is_found_with_its_kind_and_exact_span(kind: str) -> None:
    for seed in range(5):
        sample = positive(kind, random.Random(seed))
        assert sample.secret is not None
        start, end = sample.secret
        assert (start, end, kind) in GUARD.spans(sample.text), sample.text


@pytest.mark.parametrize("lookalike", sorted(LOOKALIKES))
def test_look_alikes_are_not_secrets(lookalike: str) -> None:
    rng = random.Random(3)
    for _ in range(20):
        text = rng.choice(LOOKALIKES[lookalike])(rng)
        assert GUARD.spans(text) == [], text


def test_placeholders_and_ordinary_sentences_are_not_secrets() -> None:
    for text in ["password: <your password>", "API_KEY=YOUR_API_KEY", "token: ${GITHUB_TOKEN}",
                 "Reset your password from the settings page.", "Each token costs a fraction of a cent.",
                 "The commit 3f786850e387550fdab836ed7e6dc881de23001b fixed it.", "version: 1.2.3-rc.1+build.5",
                 "password_reset_url: https://example.com/account/reset", "password_hash: sha256",
                 "PASSWORD_HASHERS = django.contrib.auth.hashers.PBKDF2PasswordHasher", "pwd: /home/ana/app"]:
        assert GUARD.spans(text) == [], text


def test_a_pem_block_is_one_finding_from_header_to_footer() -> None:
    body = "\n".join(["MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7" + "a1B2c3D4e5F6" for _ in range(6)])
    pem = f"-----BEGIN RSA PRIVATE KEY-----\n{body}\n-----END RSA PRIVATE KEY-----"
    text = f"Here:\n{pem}\nKeep it safe."
    assert kinds_at(text) == [(pem, "private_key")]


def test_a_secret_cut_short_at_the_end_of_the_text_is_still_reported() -> None:
    assert kinds_at("the key is ghp_Zq8mR2vX7pL0nB4tK9wE1cY6u") == [("ghp_Zq8mR2vX7pL0nB4tK9wE1cY6u", "github_pat")]
    assert kinds_at("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAAB") == [
        ("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAAB", "private_key")]
    assert GUARD.spans("the key is ghp_Zq8mR2vX7pL0nB4tK9wE1cY6u, it expired") == []  # ended: too short for the format


def test_a_specific_format_wins_over_the_generic_rule() -> None:
    assert kinds_at("token = ghp_Zq8mR2vX7pL0nB4tK9wE1cY6uH3sF5gA8dJ2") == [
        ("ghp_Zq8mR2vX7pL0nB4tK9wE1cY6uH3sF5gA8dJ2", "github_pat")]


def test_offsets_are_characters_after_non_ascii_text() -> None:
    text = "Schlüssel 🔑: AKIAQYLPMN5HHHFPZAM2 — bitte löschen"
    (start, end, kind), = GUARD.spans(text)
    assert text[start:end] == "AKIAQYLPMN5HHHFPZAM2" and kind == "aws_access_key"


def test_the_rules_cover_every_kind_the_issue_names_and_carry_their_attribution() -> None:
    kinds = load_rules().kinds
    assert set(SECRETS) <= kinds
    data = resources.files("guardproxy.guards.secrets").joinpath("data")
    notice = data.joinpath("NOTICE").read_text()
    assert "gitleaks" in notice and "detect-secrets" in notice
    assert "MIT License" in data.joinpath("LICENSE.gitleaks").read_text()
    assert "Apache License" in data.joinpath("LICENSE.detect-secrets").read_text()


def test_shannon_entropy() -> None:
    assert shannon_entropy("") == 0.0
    assert shannon_entropy("aaaa") == 0.0
    assert shannon_entropy("abcd") == pytest.approx(2.0)


# Policy keys


def test_kinds_limits_what_is_reported() -> None:
    guard = SecretsGuard(SecretsConfig(kinds=["aws_access_key"]))
    text = "AKIAQYLPMN5HHHFPZAM2 and ghp_Zq8mR2vX7pL0nB4tK9wE1cY6uH3sF5gA8dJ2"
    assert kinds_at(text, guard) == [("AKIAQYLPMN5HHHFPZAM2", "aws_access_key")]


def test_allow_and_allow_patterns_leave_values_alone() -> None:
    text = "AKIAQYLPMN5HHHFPZAM2 and AKIAQYLPMN5HHHFPZAM3"
    assert kinds_at(text, SecretsGuard(SecretsConfig(allow=["AKIAQYLPMN5HHHFPZAM2"]))) == [
        ("AKIAQYLPMN5HHHFPZAM3", "aws_access_key")]
    assert SecretsGuard(SecretsConfig(allow_patterns=["AKIAQYLPMN5HHHFPZAM[0-9]"])).spans(text) == []
    assert len(SecretsGuard(SecretsConfig(allow_patterns=["AKIAQYLPMN5HHHFPZ"])).spans(text)) == 2  # whole values only


def test_entropy_threshold_applies_to_the_generic_rules() -> None:
    text = "password: Xk9#mQ2$vL7!pR4"
    assert SecretsGuard(SecretsConfig(entropy_threshold=4.5)).spans(text) == []
    assert len(SecretsGuard(SecretsConfig(entropy_threshold=1.0)).spans(text)) == 1
    strict = SecretsGuard(SecretsConfig(entropy_threshold=7.9))
    assert kinds_at("AKIAQYLPMN5HHHFPZAM2", strict) == [("AKIAQYLPMN5HHHFPZAM2", "aws_access_key")]  # not generic


@pytest.mark.parametrize(("keys", "message"), [
    ({"kinds": ["aws_acess_key"]}, "did you mean aws_access_key"),
    ({"kinds": []}, "kinds is empty"),
    ({"allow": ["  "]}, "empty strings"),
    ({"allow_patterns": ["(a+)+\\1"]}, "backreference"),
    ({"entropy_threshold": 9}, "less than or equal to 8"),
    ({"threshold": 0.5}, "Extra inputs are not permitted"),
])
def test_config_errors_say_what_is_wrong(keys: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        SecretsConfig(**keys)  # type: ignore[arg-type]


def test_a_policy_error_names_the_key() -> None:
    with pytest.raises(Exception, match="kinds"):
        parse_policy("version: 1\nname: p\nchains:\n  default:\n    input:\n"
                     "      - {guard: secrets, action: redact, kinds: [nope]}\n", "p")


def test_registered_inline_and_cacheable() -> None:
    assert REGISTRY["secrets"] is SecretsGuard
    assert SecretsGuard.kind == "inline" and SecretsGuard.cacheable is True
    assert SecretsGuard.min_match_chars >= 24


def test_redaction_keeps_the_kind() -> None:
    policy = parse_policy("version: 1\nname: p\nchains:\n  default:\n    input:\n"
                          "      - {name: secrets, guard: secrets, action: redact}\n", "p")
    engine = Engine(1)
    engine.prepare([policy])
    text = "keys: AKIAQYLPMN5HHHFPZAM2 and ghp_Zq8mR2vX7pL0nB4tK9wE1cY6uH3sF5gA8dJ2."
    result = asyncio.run(engine.run(policy, policy.chains["default"].input, [Segment(text)], GuardContext("input")))
    assert result.texts[0] == "keys: [SECRET:aws_access_key] and [SECRET:github_pat]."
    assert {d.label for d in result.decisions} == {"aws_access_key", "github_pat"}


@pytest.mark.parametrize("after", [". Please rotate it.", " and more", ""])
def test_an_openai_key_ending_in_a_dash_is_found(after: str) -> None:
    """gitleaks' rule closed the key with a word boundary, which a final '-' never has (a fuzzed stream found it)."""
    from guardproxy.guards.secrets.config import SecretsConfig
    from guardproxy.guards.secrets.guard import SecretsGuard

    key = ("sk-proj-JHsS1kVJYl1V8v-1OVhdLGSqIJzBThG_XNdJ9uAWJzTeamkN9y9Vc5OshCHP8hsWDMfbSpNsJjT3BlbkFJIReKbmPze9"
           "YJ75omtGUDt7VlbEjNq9vx_H222E-EvB4kIMKdN4gaTiwZVP7ey3KHlSULkscLD-")
    text = f"My OpenAI key is {key}{after}"
    found = SecretsGuard(SecretsConfig()).scan([Segment(text)], GuardContext("input"))
    assert isinstance(found, list)
    assert [(f.label, text[f.start:f.end]) for f in found] == [("openai_api_key", key)]  # type: ignore[misc]
