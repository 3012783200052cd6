"""``guardproxy replay``: exact transition and per-entry counts on hand-built trails whose answers are known."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import openai
import pytest

from guardproxy.audit.placeholders import placeholder_in
from guardproxy.cli import run
from tests.audit_trails import guard, record, write_trail
from tests.conftest import RunningProxy, wait_until

LIVE = """version: 1
name: live
chains:
  default:
    input:
      - {name: injection, guard: keywords, action: block, label: prompt_injection,
         terms: [ignore previous instructions]}
      - {name: names, guard: keywords, action: redact, label: PERSON, terms: [Alice]}
    output:
      - {name: promises, guard: keywords, action: flag, label: promise, terms: [guaranteed]}
"""

# The change under review: a second injection phrase, names blocked instead of redacted, the promise
# flag removed, and a new output block.
NEW = """version: 1
name: live
chains:
  default:
    input:
      - {name: injection, guard: keywords, action: block, label: prompt_injection,
         terms: [ignore previous instructions, disregard the rules]}
      - {name: names, guard: keywords, action: block, label: PERSON, terms: [Alice]}
    output:
      - {name: secrets, guard: keywords, action: block, label: secret, terms: [launch code]}
"""


def _trail(path: Path) -> Path:
    """Texts as the trail stores them: every span a live guard found is masked."""
    return write_trail(path, [
        record("r1", "pass", {"input": "pass", "output": "pass"},
               text={"input": "please disregard the rules", "output": "ok"}),
        record("r2", "blocked", {"input": "blocked"}, [guard("input", "injection", ["prompt_injection"])],
               text={"input": "[prompt_injection] now"}),
        record("r3", "redacted", {"input": "redacted", "output": "pass"},
               [guard("input", "names", ["PERSON"], action="redact")],
               text={"input": "hi <PERSON_1>, how are you", "output": "fine"}),
        record("r4", "flagged", {"input": "pass", "output": "flagged"},
               [guard("output", "promises", ["promise"], action="flag")],
               text={"input": "tell me", "output": "returns are [promise]"}),
        record("r5", "blocked", {"input": "blocked"}, [guard("input", "injection", ["prompt_injection"])]),
        record("r6", "pass", {"input": "pass", "output": "pass"}, chain="strict",
               text={"input": "hello", "output": "the launch code is 1234"}),
        record("r7", "redacted", {"input": "pass", "output": "redacted"}, text={"input": "plain question"}),
    ])


@pytest.fixture
def policies(tmp_path: Path) -> tuple[Path, Path]:
    (tmp_path / "live.yaml").write_text(LIVE)
    (tmp_path / "new.yaml").write_text(NEW)
    return tmp_path / "live.yaml", tmp_path / "new.yaml"


def _replay_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, object]:
    assert run(["replay", *args, "--json"]) == 0
    result: dict[str, object] = json.loads(capsys.readouterr().out)
    return result


def test_replay_counts_every_transition_and_entry(tmp_path: Path, policies: tuple[Path, Path],
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    trail = _trail(tmp_path / "audit.jsonl")
    result = _replay_json(capsys, "--policy", str(policies[1]), "--audit", str(trail))
    assert list(result) == ["records", "changed", "transitions", "by_guard", "examples", "not_replayable"]
    assert result["records"] == 7 and result["not_replayable"] == 1
    # r1 newly blocked; r3's redaction (its placeholder in the text) became a block; r4's flag is gone;
    # r6 (chain "strict" is not in the new policy: default) now blocks its answer; r2 and r7 unchanged.
    assert result["transitions"] == {"flagged->pass": 1, "pass->blocked": 2, "redacted->blocked": 1}
    assert result["changed"] == 4
    assert result["by_guard"] == {
        "input/injection": {"started": {"prompt_injection": 1}, "stopped": {}},
        "output/promises": {"started": {}, "stopped": {"promise": 1}},
        "output/secrets": {"started": {"secret": 1}, "stopped": {}},
    }
    examples = result["examples"]
    assert isinstance(examples, list)
    assert [e["request_id"] for e in examples] == ["r1", "r3", "r4", "r6"]
    assert examples[0] == {"request_id": "r1", "time": "2026-12-01T10:00:00.000Z", "transition": "pass->blocked",
                           "stages": {"input": "pass->blocked"}, "started": ["input/injection: prompt_injection"],
                           "stopped": []}
    assert examples[1]["stages"] == {"input": "redacted->blocked"} and examples[1]["started"] == []


def test_replaying_the_live_policy_changes_nothing(tmp_path: Path, policies: tuple[Path, Path],
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """The entries see <PERSON_1> and [promise], not Alice and guaranteed: the marks keep r3 redacted and
    r4 flagged, and r2 (its phrase masked) blocked."""
    trail = _trail(tmp_path / "audit.jsonl")
    result = _replay_json(capsys, "--policy", str(policies[0]), "--audit", str(trail))
    assert result["changed"] == 0 and result["transitions"] == {} and result["by_guard"] == {}
    assert result["records"] == 7 and result["not_replayable"] == 1


def test_a_removed_redaction_is_a_change(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    policy = tmp_path / "p.yaml"
    policy.write_text("version: 1\nname: live\nchains:\n  default:\n    input:\n"
                      "      - {name: other, guard: keywords, action: flag, terms: [zebra]}\n")
    trail = write_trail(tmp_path / "t.jsonl", [
        record("r3", "redacted", {"input": "redacted"}, [guard("input", "names", ["PERSON"], action="redact")],
               text={"input": "hi <PERSON_1>"})])
    result = _replay_json(capsys, "--policy", str(policy), "--audit", str(trail))
    assert result["transitions"] == {"redacted->pass": 1}
    assert result["by_guard"] == {"input/names": {"started": {}, "stopped": {"PERSON": 1}}}


def test_text_output_and_examples_limit(tmp_path: Path, policies: tuple[Path, Path],
                                        capsys: pytest.CaptureFixture[str]) -> None:
    trail = _trail(tmp_path / "audit.jsonl")
    assert run(["replay", "--policy", str(policies[1]), "--audit", str(trail), "--examples", "1"]) == 0
    out = capsys.readouterr().out
    assert "7 records, 6 replayed, 1 not replayable" in out
    assert "changed verdicts: 4 of 6" in out
    assert "pass->blocked" in out and "redacted->blocked" in out
    assert "live findings credited from the marks they left in the stored text: 2" in out  # r2 and r3
    example_lines = [line for line in out.splitlines()[out.splitlines().index("examples:") + 1:]]
    assert example_lines == ["  r1  pass->blocked  input pass->blocked; +input/injection: prompt_injection"]


def test_rotated_files_are_replayed_oldest_first(tmp_path: Path, policies: tuple[Path, Path],
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    trail = tmp_path / "audit.jsonl"
    write_trail(tmp_path / "audit.jsonl.1", [record("old", "pass", {"input": "pass"},
                                                    text={"input": "disregard the rules"})])
    write_trail(trail, [record("new", "pass", {"input": "pass"}, text={"input": "disregard the rules"})])
    result = _replay_json(capsys, "--policy", str(policies[1]), "--audit", str(trail))
    assert result["records"] == 2 and result["transitions"] == {"pass->blocked": 2}
    assert [e["request_id"] for e in result["examples"]] == ["old", "new"]  # type: ignore[union-attr]


def test_unusable_policy_or_trail_exits_2_naming_file_and_line(tmp_path: Path, policies: tuple[Path, Path],
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    trail = _trail(tmp_path / "audit.jsonl")
    bad_policy = tmp_path / "bad.yaml"
    bad_policy.write_text("version: 1\nname: x\nchains:\n  default:\n    input:\n"
                          "      - {guard: keywords, action: ban, terms: [a]}\n")
    assert run(["replay", "--policy", str(bad_policy), "--audit", str(trail)]) == 2
    assert f"{bad_policy}:6: chains.default.input.0.action" in capsys.readouterr().err
    with trail.open("a") as lines:
        lines.write('{"v": 2}\n')
    assert run(["replay", "--policy", str(policies[1]), "--audit", str(trail)]) == 2
    assert f"{trail}:8: audit format version 2" in capsys.readouterr().err
    assert run(["replay", "--policy", str(policies[1]), "--audit", str(tmp_path / "missing.jsonl")]) == 2
    assert "no such audit trail" in capsys.readouterr().err


@pytest.mark.parametrize(("text", "guard", "found"), [
    ("hi <PERSON_1>", "pii", True), ("hi <PERSON>", "pii", True), ("hi <PERSON:0a1b2c3d4e5f>", "pii", True),
    ("hi [PERSON]", "keywords", True), ("key [SECRET:PERSON]", "secrets", True), ("card ****", "pii", True),
    ("card ****", "keywords", False), ("hi <PERSONA_1>", "pii", False), ("hi PERSON", "pii", False),
    ("hi <EMAIL_ADDRESS_1>", "pii", False),
])
def test_placeholder_marks(text: str, guard: str, found: bool) -> None:
    assert placeholder_in("PERSON", [text], guard) is found


def test_no_credit_for_an_entry_of_another_guard_type(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The same name on another guard is another check: it must find the value itself."""
    policy = tmp_path / "p.yaml"
    policy.write_text("version: 1\nname: live\nchains:\n  default:\n    input:\n"
                      "      - {name: names, guard: pii, action: redact, nlp: pattern, entities: [EMAIL_ADDRESS]}\n")
    trail = write_trail(tmp_path / "t.jsonl", [
        record("r3", "redacted", {"input": "redacted"}, [guard("input", "names", ["PERSON"], action="redact")],
               text={"input": "hi [PERSON]"})])
    result = _replay_json(capsys, "--policy", str(policy), "--audit", str(trail))
    assert result["transitions"] == {"redacted->pass": 1}


E2E_LIVE = """version: 1
name: live
audit: {text: redacted}
chains:
  default:
    input:
      - {name: banned, guard: keywords, action: block, terms: [forbidden phrase], label: banned}
      - {name: secrets, guard: keywords, action: redact, patterns: ['sk-[A-Za-z0-9]{20,}'], label: SECRET,
         case_sensitive: true}
    output:
      - {name: promise, guard: keywords, action: flag, terms: [guaranteed returns], label: promise}
"""

# The change: "weather" banned too, secrets blocked instead of redacted, the promise flag removed.
E2E_NEW = """version: 1
name: live
chains:
  default:
    input:
      - {name: banned, guard: keywords, action: block, terms: [forbidden phrase, weather], label: banned}
      - {name: secrets, guard: keywords, action: block, patterns: ['sk-[A-Za-z0-9]{20,}'], label: SECRET,
         case_sensitive: true}
    output: []
"""


def test_a_trail_the_proxy_wrote_replays_to_the_expected_counts(
        start_proxy: Callable[..., RunningProxy], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    trail = tmp_path / "audit.jsonl"
    proxy = start_proxy(policy=E2E_LIVE, audit=str(trail))
    client = proxy.client()
    asks = [("hello", None), ("this is a forbidden phrase", None), ("my key sk-abcdefghijklmnopqrstuvwx", None),
            ("advice please", "guaranteed returns for you"), ("please tell me the weather", None)]
    for text, reply in asks:
        try:
            client.chat.completions.create(model="demo", messages=[{"role": "user", "content": text}],
                                           extra_headers={"x-demo-reply": reply} if reply else None)
        except openai.BadRequestError:
            assert text == "this is a forbidden phrase"
    assert wait_until(lambda: trail.exists() and len(trail.read_text().splitlines()) == len(asks))
    assert "sk-abcdefghijklmnopqrstuvwx" not in trail.read_text()
    new = tmp_path / "new.yaml"
    new.write_text(E2E_NEW)
    result = _replay_json(capsys, "--policy", str(new), "--audit", str(trail))
    assert result["records"] == 5 and result["not_replayable"] == 0 and result["changed"] == 3
    assert result["transitions"] == {"flagged->pass": 1, "pass->blocked": 1, "redacted->blocked": 1}
    assert result["by_guard"] == {"input/banned": {"started": {"banned": 1}, "stopped": {}},
                                  "output/promise": {"started": {}, "stopped": {"promise": 1}}}
    same = _replay_json(capsys, "--policy", str(proxy.policy_path), "--audit", str(trail))
    assert same["changed"] == 0 and same["by_guard"] == {}


def test_guards_that_cannot_be_built_exit_2(tmp_path: Path, policies: tuple[Path, Path],
                                             monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    def broken(self: object, policies: object) -> None:
        raise RuntimeError("model file missing")

    monkeypatch.setattr("guardproxy.engine.Engine.prepare", broken)
    assert run(["replay", "--policy", str(policies[1]), "--audit", str(_trail(tmp_path / "a.jsonl"))]) == 2
    assert "the policy's guards cannot be built: RuntimeError: model file missing" in capsys.readouterr().err
