"""Convert gitleaks' rule list (and the few rules it lacks, from detect-secrets) into
``guardproxy/guards/secrets/data/rules.json``, which ``guard: secrets`` loads.

    git --git-dir=<gitleaks mirror> show HEAD:config/gitleaks.toml > /tmp/gitleaks.toml
    python training/secrets_rules.py /tmp/gitleaks.toml --commit <gitleaks commit> [--out PATH]

The rules are taken as data, not rewritten: each gitleaks rule keeps its regex (Go RE2 syntax, which the
guard compiles with RE2 as it is), keywords, entropy minimum, secret group and allowlists. What is left out
and why: rules that only look at file paths (a proxy sees no files), and allowlists that need a path or a
commit (they can never hold here). ``training/secrets_extra_rules.toml`` adds the formats gitleaks has no
rule for (AWS secret access keys, Azure storage account keys, passwords in URLs and in assignments, from
detect-secrets) and the stream-safety partials. ``KINDS`` renames a rule id to the kind a redaction shows
(``[SECRET:aws_access_key]``); any other rule's kind is its id with ``_`` for ``-``.

Deterministic: the same inputs give the same file. It lives in ``training/`` with the other scripts that
make a shipped data file from an upstream source; the package never reads the TOML.
"""

from __future__ import annotations

import argparse
import json
import re
import tomllib
from pathlib import Path
from typing import Any

import re2
from re2 import _re2

OUT = Path(__file__).resolve().parents[1] / "guardproxy" / "guards" / "secrets" / "data" / "rules.json"
EXTRA = Path(__file__).resolve().parent / "secrets_extra_rules.toml"

KINDS = {
    "aws-access-token": "aws_access_key",
    "gcp-api-key": "google_api_key",
    "github-pat": "github_pat",
    "github-fine-grained-pat": "github_fine_grained_pat",
    "github-oauth": "github_oauth_token",
    "huggingface-access-token": "huggingface_token",
    "huggingface-organization-api-token": "huggingface_org_token",
    "npm-access-token": "npm_token",
    "pypi-upload-token": "pypi_token",
    "sendgrid-api-token": "sendgrid_api_key",
    "stripe-access-token": "stripe_key",
    "private-key": "private_key",
    "generic-api-key": "generic_secret",
    "jwt-base64": "jwt",
}
GENERIC = {"generic-api-key"}  # context-and-entropy rules: a specific rule wins where both match


_LONG_BOUND = re.compile(r"\{(\d+),(\d{3,})\}")


def relax_long_bounds(pattern: str) -> str:
    """``{m,n}`` with n of 100 or more becomes ``{m,}``: RE2 unrolls a counted repeat, so a large
    bound makes its DFA big and slow (README, "Secrets guard"), while the bound only keeps out runs
    longer than any real key of the format."""
    return _LONG_BOUND.sub(lambda m: m.group(0) if int(m.group(2)) < 100 else f"{{{m.group(1)},}}", pattern)


# gitleaks ends most tokens with this boundary, made for source code. In chat a key is as often followed by
# prose punctuation ("my key is sk_live_... ."), so the converter also ends a token at a run of `.,:!?)]}>`
# followed by a space, a quote or the end of the text (not at `.png` or `:8080`).
CODE_END = r"""(?:[\x60'"\s;]|\\[nr]|$)"""
PROSE_END = r"""(?:[\x60'"\s;]|\\[nr]|$|[.,:!?)\]}>]+(?:[\x60'"\s]|$))"""


# A `\b` right after a run that may end in `-`, closing the token just before the token-end group, only
# refuses a key whose last character is `-` (no word boundary between `-` and a space or `.`): the
# token-end group bounds the key already. gitleaks' OpenAI rule has one; a fuzzed stream found the miss.
_DASH_BOUNDARY = re.compile(r"(-\]\{[0-9,]+\}\))\\b(?=[|)])")


# gitleaks' generated context rules open with this lazy run, which only widens the match to the left of
# the keyword. The converter moves it out of the regex (the guard widens the match itself, see
# rules.py `LEFT_CONTEXT`): the searched regex gets cheaper and finds the same secrets.
LEFT_CONTEXT = "[\\w.-]{0,50}?"


def _without_left_context(pattern: str) -> tuple[str, bool]:
    for flags in ("(?i)", ""):
        if pattern.startswith(flags + LEFT_CONTEXT):
            return flags + pattern[len(flags + LEFT_CONTEXT):], True
    return pattern, False


def _compiles(pattern: str) -> str | None:
    """RE2's error for ``pattern``, or None when it compiles."""
    options = re2.Options()
    options.log_errors = False
    program = _re2.RE2(pattern.encode(), options)
    if program.ok():
        return None
    error = program.error()
    return error.decode(errors="replace") if isinstance(error, bytes) else str(error)


def _allowlists(raw: list[dict[str, Any]]) -> list[dict[str, Any]]:
    kept = []
    for allow in raw:
        needs_path = bool(allow.get("paths") or allow.get("commits"))
        if needs_path and allow.get("condition", "OR").upper() == "AND":
            continue  # holds only for some files or commits: never here
        regexes, stopwords = allow.get("regexes", []), [w.lower() for w in allow.get("stopwords", [])]
        if regexes or stopwords:
            kept.append({"target": allow.get("regexTarget", allow.get("target", "secret")), "regexes": regexes,
                         "stopwords": sorted(set(stopwords))})
    return kept


def convert(gitleaks: dict[str, Any], extra: dict[str, Any], commit: str) -> dict[str, Any]:
    partials: dict[str, str] = extra.get("partials", {})
    rules: list[dict[str, Any]] = []
    skipped: list[str] = []
    for rule in gitleaks["rules"]:
        if "regex" not in rule or "path" in rule:
            skipped.append(rule["id"])
            continue
        rules.append({
            "id": rule["id"], "kind": KINDS.get(rule["id"], rule["id"].replace("-", "_")),
            "source": "gitleaks", "regex": rule["regex"],
            "keywords": sorted({k.lower() for k in rule.get("keywords", [])}),
            "entropy": float(rule.get("entropy", 0.0)), "secret_group": int(rule.get("secretGroup", 0)),
            "generic": rule["id"] in GENERIC, "allow": _allowlists(rule.get("allowlists", [])),
        })
    for rule in extra["rules"]:
        rules.append({
            "id": rule["id"], "kind": rule["kind"], "source": rule["source"], "regex": rule["regex"],
            "keywords": sorted(k.lower() for k in rule["keywords"]), "entropy": float(rule.get("entropy", 0.0)),
            "secret_group": int(rule.get("secret_group", 0)), "generic": bool(rule.get("generic", False)),
            "allow": _allowlists(rule.get("allow", [])),
        })
    for rule in rules:
        prose = relax_long_bounds(rule["regex"]).replace(CODE_END, PROSE_END)
        if prose.endswith(PROSE_END):
            prose = _DASH_BOUNDARY.sub(r"\1", prose)
        relaxed, rule["left_context"] = _without_left_context(prose)
        if relaxed != rule["regex"]:
            rule["regex"], rule["regex_as_published"] = relaxed, rule["regex"]
    by_id = {rule["id"]: rule for rule in rules}
    for rule_id, partial in partials.items():
        by_id[rule_id]["partial"] = relax_long_bounds(partial)
    for rule in rules:
        for pattern in [rule["regex"], rule.get("partial")] + [r for a in rule["allow"] for r in a["regexes"]]:
            if pattern is not None and (error := _compiles(pattern)) is not None:
                raise SystemExit(f"{rule['id']}: RE2 cannot compile {pattern!r}: {error}")
    global_allow = gitleaks.get("allowlist", {})
    for pattern in global_allow.get("regexes", []):
        if (error := _compiles(pattern)) is not None:
            raise SystemExit(f"global allowlist: RE2 cannot compile {pattern!r}: {error}")
    print(f"{len(rules)} rules ({len(rules) - len(extra['rules'])} from gitleaks, {len(extra['rules'])} extra), "
          f"{len(partials)} partials; skipped path-only or path rules: {', '.join(skipped)}")
    return {
        "sources": {
            "gitleaks": {"url": "https://github.com/gitleaks/gitleaks", "file": "config/gitleaks.toml",
                         "commit": commit, "licence": "MIT"},
            "detect-secrets": {"url": "https://github.com/Yelp/detect-secrets",
                               "commit": "5e141933554a0b74e7341841f318be21e895339c", "licence": "Apache-2.0"},
        },
        "allow": {"regexes": global_allow.get("regexes", []),
                  "stopwords": sorted({w.lower() for w in global_allow.get("stopwords", [])})},
        "rules": rules,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("gitleaks_toml", type=Path)
    parser.add_argument("--commit", required=True, help="the gitleaks commit the file was read at")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    gitleaks = tomllib.loads(args.gitleaks_toml.read_text())
    extra = tomllib.loads(EXTRA.read_text())
    data = convert(gitleaks, extra, args.commit)
    args.out.write_text(json.dumps(data, indent=1, ensure_ascii=False, sort_keys=True) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
