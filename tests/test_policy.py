"""Policy schema, loader errors and route selection."""

from __future__ import annotations

from pathlib import Path

import pytest

from guardproxy.policy import PolicyError, load_policy_set
from guardproxy.policy.loader import parse_policy

MINIMAL = "version: 1\nname: p\nchains: {default: {}}\n"


def problems(text: str) -> list[str]:
    with pytest.raises(PolicyError) as caught:
        parse_policy(text, "f.yaml")
    return caught.value.problems


def test_defaults_are_documented_values() -> None:
    policy = parse_policy(MINIMAL, "f.yaml")
    assert (policy.defaults.mode, policy.defaults.on_error, policy.defaults.timeout_ms) == ("enforce", "block", 2000)
    assert policy.stream.hold_back_chars == 64
    assert policy.unknown_paths == "deny" and policy.passthrough == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("version: 2\nname: p\nchains: {default: {}}\n", "f.yaml:1: version: Input should be 1"),
        ("version: 1\nname: p\nchain: {default: {}}\n", "f.yaml:3: chain: unknown key"),
        ("version: 1\nname: p\nchains: {other: {}}\n", "f.yaml:3: chains: a chain named 'default' is required"),
        ("version: 1\nname: p\nchains:\n  default:\n    input:\n      - {guard: keywords, action: block}\n",
         "f.yaml:6: chains.default.input.0: give at least one of 'terms' or 'patterns'"),
        ("version: 1\nname: p\nchains:\n  default:\n    input:\n      - {guard: keywords, action: block, "
         "terms: [a], colour: red}\n", "f.yaml:6: chains.default.input.0: colour: unknown key for guard 'keywords'"),
        ("version: 1\nname: p\nchains:\n  default:\n    output:\n      - {guard: nope, action: flag}\n",
         "f.yaml:6: chains.default.output.0: unknown guard 'nope'"),
        ("version: 1\nname: p\ndefaults: {mode: loud}\nchains: {default: {}}\n",
         "f.yaml:3: defaults.mode: Input should be 'enforce' or 'monitor'"),
        ("version: 1\nname: p\nchains: {default: {}}\nroutes:\n  - {match: {model: 'x*'}, chain: missing}\n",
         "no chain named 'missing'"),
        ("version: 1\nname: p\nchains: {default: {}}\n  bad: [indent\n", "f.yaml:4: not valid YAML"),
        ("- just\n- a list\n", "f.yaml:1: a policy file must be a mapping"),
    ],
)
def test_invalid_files_name_line_key_and_problem(text: str, expected: str) -> None:
    found = problems(text)
    assert any(expected in p for p in found), found


def test_invalid_regex_is_reported() -> None:
    found = problems("version: 1\nname: p\nchains:\n  default:\n    input:\n"
                     "      - {guard: keywords, action: flag, patterns: ['(open']}\n")
    assert "is not a valid regular expression" in found[0]


def test_duplicate_guard_names_in_a_stage() -> None:
    found = problems("version: 1\nname: p\nchains:\n  default:\n    input:\n"
                     "      - {name: a, guard: keywords, action: flag, terms: [x]}\n"
                     "      - {name: a, guard: keywords, action: flag, terms: [y]}\n")
    assert "guard names must be unique" in found[0]


def test_directory_loads_all_or_nothing(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(MINIMAL.replace("name: p", "name: a"))
    (tmp_path / "b.yaml").write_text(MINIMAL.replace("name: p", "name: default"))
    (tmp_path / "notes.md").write_text("not a policy")
    policies = load_policy_set(tmp_path)
    assert [item.policy.name for item in policies.policies] == ["a", "default"]
    assert policies.fallback.name == "default"
    (tmp_path / "c.yaml").write_text("version: 1\nname: c\n")
    with pytest.raises(PolicyError) as caught:
        load_policy_set(tmp_path)
    assert caught.value.problems == [f"{tmp_path / 'c.yaml'}:1: chains: required key is missing"]


def test_duplicate_policy_names_across_files(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(MINIMAL)
    (tmp_path / "b.yaml").write_text(MINIMAL)
    with pytest.raises(PolicyError, match="used by more than one file"):
        load_policy_set(tmp_path)


def test_digest_changes_with_content(tmp_path: Path) -> None:
    file = tmp_path / "p.yaml"
    file.write_text(MINIMAL)
    first = load_policy_set(file).digest
    assert len(first) == 12 and load_policy_set(file).digest == first
    file.write_text(MINIMAL + "# a comment changes the files, so the digest\n")
    assert load_policy_set(file).digest != first


def test_route_selection_first_match_wins(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text(
        "version: 1\nname: default\nchains: {default: {}, cheap: {}, acme: {}}\nroutes:\n"
        "  - {match: {model: 'gpt-4o-mini*'}, chain: cheap}\n"
        "  - {match: {header: {x-tenant: acme}}, chain: acme}\n"
        "  - {match: {path: '/v1/embeddings'}, chain: cheap}\n"
    )
    policies = load_policy_set(tmp_path)
    assert policies.select("gpt-4o-mini-2024", {"x-tenant": "acme"}, "/v1/chat/completions").chain_name == "cheap"
    assert policies.select("gpt-4o", {"x-tenant": "acme"}, "/v1/chat/completions").chain_name == "acme"
    assert policies.select("gpt-4o", {"x-tenant": "other"}, "/v1/embeddings").chain_name == "cheap"
    choice = policies.select(None, {}, "/v1/chat/completions")
    assert choice.chain_name == "default" and choice.tag == f"default@{policies.digest}"


def test_missing_path_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="no such file"):
        load_policy_set(tmp_path / "absent.yaml")


def test_shipped_policies_are_valid() -> None:
    root = Path(__file__).resolve().parent.parent / "policies"
    assert load_policy_set(root).fallback.name == "default"
