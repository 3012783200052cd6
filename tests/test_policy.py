"""Policy schema, loader errors and route selection."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from guardproxy.cli import run
from guardproxy.policy import PolicyError, load_policy_set
from guardproxy.policy.loader import parse_policy
from guardproxy.policy.schema import Policy

REPO = Path(__file__).resolve().parent.parent

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
        "version: 1\nname: default\nchains: {default: {}, cheap: {}, acme: {}}\ntrusted_headers: [X-Tenant]\n"
        "routes:\n"
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


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("version: 1\nname: p\nchains:\n  default:\n    input:\n"
         "      - {guard: keywords, action: block, action: flag, terms: [a]}\n",
         "f.yaml:6: chains.default.input.0: duplicate key 'action': a key may appear only once in a mapping"),
        ("version: 1\nname: p\nchains:\n  default:\n    input:\n      - guard: keywords\n        action: block\n"
         "        terms: [a]\n        action: flag\n",
         "f.yaml:9: chains.default.input.0: duplicate key 'action' (also on line 7)"),
        ("version: 1\nname: p\nchains:\n  default: {}\n  default: {}\n", "f.yaml:5: chains: duplicate key 'default'"),
        ("version: 1\nname: p\nname: q\nchains: {default: {}}\n", "f.yaml:3: duplicate key 'name' (also on line 2)"),
        ("version: 1\nname: p\nchains: {default: {}}\nroutes:\n"
         "  - {match: {header: {x-a: '1', x-a: '2'}}, chain: default}\n",
         "f.yaml:5: routes.0.match.header: duplicate key 'x-a'"),
    ],
)
def test_a_key_repeated_in_a_mapping_is_an_error(text: str, expected: str) -> None:
    found = problems(text)
    assert len(found) == 1 and found[0].startswith(expected), found


def test_keys_merged_in_may_be_overridden() -> None:
    policy = parse_policy("version: 1\nname: p\nchains:\n  default:\n    input:\n"
                          "      - &base {guard: keywords, action: block, terms: [a]}\n"
                          "      - {<<: *base, action: flag, name: second}\n", "f.yaml")
    assert [e.action for e in policy.chains["default"].input] == ["block", "flag"]


def test_check_exits_1_on_a_duplicate_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "p.yaml"
    bad.write_text("version: 1\nname: p\nchains:\n  default:\n    input:\n"
                   "      - {guard: keywords, action: block, terms: [a], action: flag}\n")
    assert run(["check", str(bad)]) == 1
    assert f"{bad}:6: chains.default.input.0: duplicate key 'action'" in capsys.readouterr().err


def test_the_schema_imports_no_guard() -> None:
    """A policy file is data: the schema knows guards only through the types the loader passes in."""
    tree = ast.parse((REPO / "guardproxy" / "policy" / "schema.py").read_text())
    imported = [node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
    imported += [alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names]
    assert not [name for name in imported if name.startswith("guardproxy.guards")]
    with pytest.raises(ValidationError, match="validated against the known guard types"):
        Policy.model_validate({"version": 1, "name": "p",
                               "chains": {"default": {"input": [{"guard": "keywords", "action": "flag"}]}}})


CHECK_AND_LIST_MODULES = """
import json, sys
from guardproxy.cli import run
code = run(["check", *sys.argv[1:]])
heavy = ["presidio_analyzer", "spacy", "onnxruntime", "tokenizers", "guardproxy.guards.pii.guard"]
print(json.dumps({"code": code, "loaded": [name for name in heavy if name in sys.modules]}))
"""


@pytest.mark.parametrize("policy", ["keywords-only", "every guard"])
def test_check_loads_no_model_library(tmp_path: Path, policy: str) -> None:
    """Checking a policy validates every guard's keys without importing what the guards run on."""
    paths = [str(REPO / "policies"), str(REPO / "policies" / "examples")]
    if policy == "keywords-only":
        (tmp_path / "p.yaml").write_text("version: 1\nname: p\nchains:\n  default:\n    input:\n"
                                         "      - {guard: keywords, action: block, terms: [a]}\n")
        paths = [str(tmp_path)]
    result = subprocess.run([sys.executable, "-c", CHECK_AND_LIST_MODULES, *paths], capture_output=True, text=True,
                            cwd=REPO, timeout=60)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.splitlines()[-1])
    assert report == {"code": 0, "loaded": []}


def test_routes_match_on_the_api_and_refuse_an_api_that_does_not_exist(tmp_path: Path) -> None:
    from guardproxy.policy.schema import KNOWN_APIS
    from guardproxy.proxy.dialects import API_NAMES

    assert set(KNOWN_APIS) == API_NAMES  # the schema's list is the dialect table's
    (tmp_path / "p.yaml").write_text(
        "version: 1\nname: p\nchains: {default: {}, strict: {}, azure: {}}\n"
        "routes:\n  - {match: {api: messages}, chain: strict}\n  - {match: {api: 'azure_*'}, chain: azure}\n")
    policies = load_policy_set(str(tmp_path))
    assert policies.select("m", {}, "/v1/messages", "messages").chain_name == "strict"
    assert policies.select("dep", {}, "/openai/deployments/dep/embeddings", "azure_embeddings").chain_name == "azure"
    assert policies.select("m", {}, "/v1/chat/completions", "chat").chain_name == "default"
    assert policies.select("m", {}, "/v1/messages", None).chain_name == "default"
    (tmp_path / "p.yaml").write_text(
        "version: 1\nname: p\nchains: {default: {}}\nroutes:\n  - {match: {api: message}, chain: default}\n")
    with pytest.raises(PolicyError, match="matches no API"):
        load_policy_set(str(tmp_path))
