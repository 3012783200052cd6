"""training/secrets_rules.py, the converter of gitleaks' rule list: what it keeps, drops and rewrites,
and that the shipped rules.json holds what training/secrets_extra_rules.toml says."""

from __future__ import annotations

import json
import sys
import tomllib
from importlib import resources
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "training"))
import secrets_rules  # noqa: E402

GITLEAKS = {
    "allowlist": {"regexes": ["^x+$"], "stopwords": ["Example"]},
    "rules": [
        {"id": "demo-token", "regex": r"\b(demo_[a-z0-9]{8,500})(?:[\x60'" + '"' + r"\s;]|\\[nr]|$)",
         "keywords": ["Demo_"], "entropy": 3, "allowlists": [
             {"regexes": ["EXAMPLE$"]},
             {"condition": "AND", "paths": [r"\.md$"], "regexes": ["."]},
         ]},
        {"id": "demo-context", "keywords": ["demo"],
         "regex": r"(?i)[\w.-]{0,50}?(?:demo)(?:[ \t\w.-]{0,20})[\s'" + '"' + r"]{0,3}=([a-z]{9})"},
        {"id": "a-file", "path": r"\.p12$"},
        {"id": "aws-access-token", "regex": "AKIA[A-Z2-7]{16}", "keywords": ["akia"]},
    ],
}
EXTRA = {"rules": [], "partials": {"demo-token": r"\bdemo_[a-z0-9]{4,}\z"}}


def test_convert_keeps_the_rules_as_data_and_says_what_it_changed() -> None:
    data = secrets_rules.convert(GITLEAKS, EXTRA, "abc")
    rules = {r["id"]: r for r in data["rules"]}
    assert set(rules) == {"demo-token", "demo-context", "aws-access-token"}  # the path-only rule is dropped
    token = rules["demo-token"]
    assert token["regex"] == r"\b(demo_[a-z0-9]{8,})" + secrets_rules.PROSE_END
    assert token["regex_as_published"] == GITLEAKS["rules"][0]["regex"]  # type: ignore[index]
    assert token["keywords"] == ["demo_"] and token["entropy"] == 3.0 and token["kind"] == "demo_token"
    assert token["allow"] == [{"target": "secret", "regexes": ["EXAMPLE$"], "stopwords": []}]  # AND-with-path: never
    assert token["partial"] == r"\bdemo_[a-z0-9]{4,}\z"
    context = rules["demo-context"]
    assert context["left_context"] is True and context["regex"].startswith("(?i)(?:demo)")
    assert rules["aws-access-token"]["kind"] == "aws_access_key"
    assert data["allow"] == {"regexes": ["^x+$"], "stopwords": ["example"]}
    assert data["sources"]["gitleaks"]["commit"] == "abc"


def test_long_bounds_are_opened_and_short_ones_kept() -> None:
    assert secrets_rules.relax_long_bounds(r"a{50,1000}b{10,99}c{3}") == r"a{50,}b{10,99}c{3}"


def test_the_shipped_file_holds_the_extra_rules_and_partials_as_written() -> None:
    shipped = json.loads(resources.files("guardproxy.guards.secrets").joinpath("data/rules.json").read_text())
    by_id = {r["id"]: r for r in shipped["rules"]}
    extra = tomllib.loads((REPO / "training" / "secrets_extra_rules.toml").read_text())
    for rule in extra["rules"]:
        assert by_id[rule["id"]]["regex"] == secrets_rules.relax_long_bounds(rule["regex"])
        assert by_id[rule["id"]]["kind"] == rule["kind"]
    for rule_id, partial in extra["partials"].items():
        assert by_id[rule_id]["partial"] == secrets_rules.relax_long_bounds(partial)
    assert shipped["sources"]["gitleaks"]["licence"] == "MIT"
