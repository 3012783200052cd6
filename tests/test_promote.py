"""``guardproxy promote``: the shadow's rules go live, the live rules become the shadow, and again rolls back."""

from __future__ import annotations

from pathlib import Path

import pytest

from guardproxy.cli import run
from guardproxy.policy import load_policy_set

LIVE = """# the live policy
version: 1
name: live
shadow: shadow/next.yaml
shadow_sample: 0.5
chains:
  default:
    input:
      - {name: banned, guard: keywords, action: block, terms: [zanzibar]}
"""
SHADOW = """version: 1
name: next
chains:
  default:
    input:
      - {name: fruit, guard: keywords, action: block, terms: [banana]}
"""


def _files(tmp_path: Path) -> tuple[Path, Path]:
    live = tmp_path / "policies" / "live.yaml"
    shadow = tmp_path / "policies" / "shadow" / "next.yaml"
    shadow.parent.mkdir(parents=True)
    live.write_text(LIVE)
    shadow.write_text(SHADOW)
    return live, shadow


def _terms(path: Path) -> list[str]:
    policies = load_policy_set(path)
    live = policies.fallback
    entry = live.chains["default"].input[0]
    terms: list[str] = entry.settings.terms  # type: ignore[attr-defined]
    return terms


def test_promote_swaps_the_rules_and_again_rolls_back(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    live, shadow = _files(tmp_path)
    assert run(["promote", str(live)]) == 0
    assert "roll back" in capsys.readouterr().out
    policies = load_policy_set(live.parent)
    assert policies.fallback.name == "live" and policies.fallback.shadow == "shadow/next.yaml"
    assert policies.fallback.shadow_sample == 0.5
    assert _terms(live.parent) == ["banana"]
    current_shadow = policies.shadow_of(policies.fallback)
    assert current_shadow is not None and current_shadow.policy.name == "next"
    assert current_shadow.policy.shadow is None
    assert current_shadow.policy.chains["default"].input[0].settings.terms == ["zanzibar"]  # type: ignore[attr-defined]
    assert run(["promote", str(live)]) == 0
    assert _terms(live.parent) == ["zanzibar"]
    assert load_policy_set(shadow).fallback.chains["default"].input[0].settings.terms == ["banana"]  # type: ignore[attr-defined]


def test_promote_refuses_a_policy_without_a_shadow_and_writes_nothing(tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    live, _ = _files(tmp_path)
    live.write_text(LIVE.replace("shadow: shadow/next.yaml\nshadow_sample: 0.5\n", ""))
    assert run(["promote", str(live)]) == 1
    assert "names no shadow" in capsys.readouterr().err


def test_promote_refuses_a_result_that_would_not_load(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    live, shadow = _files(tmp_path)
    shadow.write_text(SHADOW.replace("name: next\n", "name: next\nname: again\n"))
    before = live.read_text(), shadow.read_text()
    assert run(["promote", str(live)]) == 1
    assert "duplicate key 'name'" in capsys.readouterr().err
    assert (live.read_text(), shadow.read_text()) == before
