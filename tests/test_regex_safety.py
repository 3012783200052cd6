"""Policy regexes (guardproxy/guards/regex_safety.py, re2_translation/): RE2 by default, finding what
Python's ``re`` finds; backtracking features refused unless an entry says ``engine: python``, which
runs in the guard pool under a timeout. The issue's case: ``(a+)+$`` against 40,000 ``a``s and ``!``."""

from __future__ import annotations

import asyncio
import re
import sys
import threading
import unicodedata
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import openai
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from presidio_analyzer import Pattern, PatternRecognizer

from guardproxy.cli import run as cli_run
from guardproxy.demo import DemoRecorder
from guardproxy.engine import Engine
from guardproxy.guards import GuardContext, Segment
from guardproxy.guards.abandonment import ScanAbandoned, abandonable
from guardproxy.guards.keywords import KeywordsConfig, KeywordsGuard
from guardproxy.guards.pii.config import PATTERN_FLAGS, CustomPattern, PiiConfig
from guardproxy.guards.pii.guard import PiiGuard
from guardproxy.guards.pii.policy_patterns import PolicyPatternRecognizer
from guardproxy.guards.regex_safety import PatternTimeout, compile_policy_regex
from guardproxy.policy.loader import PolicyError, parse_policy
from tests.conftest import RunningProxy, wait_until

CATASTROPHIC = "(a+)+$"
RUN_OF_AS = "a" * 40_000 + "!"


def python_spans(pattern: str, text: str, flags: int = 0) -> list[tuple[int, int]]:
    return [m.span() for m in re.finditer(pattern, text, flags) if m.end() > m.start()]


def re2_spans(pattern: str, text: str, flags: int = 0) -> list[tuple[int, int]]:
    compiled = compile_policy_regex(pattern, flags)
    assert compiled.engine == "re2"
    return list(compiled.spans(text))


# --- refused at load, named, and accepted with engine: python ---------------------------------------

FEATURES = [
    (r"(a)\1", "a backreference"),
    (r"(?P<x>a)(?P=x)", "a backreference"),
    (r"ab(?=c)", "a lookahead (?="),
    (r"ab(?!c)", "a negative lookahead (?!"),
    (r"(?<=a)bc", "a lookbehind (?<="),
    (r"(?<!a)bc", "a negative lookbehind (?<!"),
    (r"(?>ab)c", "an atomic group (?>"),
    (r"ab++", "a possessive quantifier"),
    (r"(a)?(?(1)b|c)d", "a conditional group (?("),
]


def keywords_policy(entry: str) -> str:
    return f"version: 1\nname: p\nchains:\n  default:\n    input:\n      - {entry}\n"


def check(tmp_path: Path, text: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    code = cli_run(["check", str(path)])
    captured = capsys.readouterr()
    return code, captured.err + captured.out


@pytest.mark.parametrize(("pattern", "feature"), FEATURES)
def test_check_refuses_each_backtracking_feature_by_name(
    pattern: str, feature: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    entry = f"{{guard: keywords, action: block, patterns: ['{pattern}']}}"
    code, output = check(tmp_path, keywords_policy(entry), capsys)
    assert code == 1
    assert "policy.yaml:6: chains.default.input.0: patterns:" in output
    assert feature in output
    assert "set `engine: python` on this entry" in output and "rewrite it without" in output


@pytest.mark.parametrize(("pattern", "feature"), FEATURES)
def test_check_accepts_each_backtracking_feature_with_engine_python(
    pattern: str, feature: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    entry = f"{{guard: keywords, action: block, engine: python, patterns: ['{pattern}']}}"
    code, output = check(tmp_path, keywords_policy(entry), capsys)
    assert (code, "OK: policy p@") == (0, output[output.index("OK"):][:13])


def test_check_refuses_a_pii_pattern_feature_and_names_the_pattern_s_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    entry = "{guard: pii, action: redact, nlp: pattern, patterns: [{name: ID, regex: 'ID-(?=\\d)\\w+'}]}"
    code, output = check(tmp_path, keywords_policy(entry), capsys)
    assert code == 1
    assert "patterns.0: regex: 'ID-(?=\\\\d)\\\\w+' needs a lookahead (?=" in output
    assert "set `engine: python` on this pattern" in output
    fixed = entry.replace("regex:", "engine: python, regex:")
    assert check(tmp_path, keywords_policy(fixed), capsys)[0] == 0


@pytest.mark.parametrize(("pattern", "named"), [
    (r"foo\bbar", r"a word boundary (\b or \B) that is not at the start or the end"),
    (r"a$b", "a '$' that is not at the end of the pattern"),
    (r"(?a)caf\w", "the ASCII flag (?a) with case-insensitive matching"),
    ("a{1001}", "RE2 cannot compile it (invalid repetition size"),
])
def test_what_re2_cannot_match_as_python_does_is_named(pattern: str, named: str) -> None:
    with pytest.raises(ValueError, match="engine: python") as caught:
        compile_policy_regex(pattern, re.IGNORECASE)
    assert named in str(caught.value)
    assert compile_policy_regex(pattern, re.IGNORECASE, "python").engine == "python"


def test_patterns_that_match_nothing_or_do_not_parse_are_still_refused() -> None:
    for engine in ("re2", "python"):
        with pytest.raises(ValueError, match="matches the empty string"):
            compile_policy_regex("a*", 0, engine)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="is not a valid regular expression"):
            compile_policy_regex("(open", 0, engine)  # type: ignore[arg-type]


# --- RE2 finds what Python's re finds -----------------------------------------------------------------

ORDINARY = [
    r"sk-(?:proj-)?[A-Za-z0-9_-]{20,}", r"AKIA[0-9A-Z]{16}", r"gh[pousr]_[A-Za-z0-9]{36,}",
    r"-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----", r"\d{3}-\d{2}-\d{4}", r"\b\d{3}-\d{4}\b", r"EMP-\d{6}",
    r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b", r"\bcafé\b", r"\bnaïve\s+user\b", r"\w+",
    r"[^\W\d_]+", r"\s+", r"\S+", r"(?i)straße", r"^\w+", r"(?m)^\w+$", r"\w+$", r"\bfoo|bar\b",
    r"(?:\bfoo\b|\bbar\b)", r"😀+", r"[é-ü]+", r"\B\w\w\B", r"(?s)<.+?>", r"<.*>", r"\d+(?:\.\d+)?", r"\.$",
]
UNICODE_TEXT = st.text(alphabet="aAbé É_1٣ \t\n.-@<>:😀süßxfoobar" + "\u00a0\u2003\u0301", max_size=40)


@settings(max_examples=150, deadline=None)
@given(text=UNICODE_TEXT, pattern=st.sampled_from(ORDINARY), ignore_case=st.booleans())
def test_spans_equal_python_s_on_ordinary_patterns(text: str, pattern: str, ignore_case: bool) -> None:
    flags = re.IGNORECASE if ignore_case else 0
    assert re2_spans(pattern, text, flags) == python_spans(pattern, text, flags)


_ATOMS = ["a", "b", "é", "_", "1", " ", "-", r"\.", ".", r"\w", r"\W", r"\d", r"\D", r"\s", r"\S", "[ab]",
          r"[^a\d]", r"[\W\d]", r"[^\W\d_]", "[a-z]", "[é-ÿ]", r"\n", "K", "😀"]
_QUANTIFIERS = st.sampled_from(["*", "+", "?", "{1,3}", "*?", "+?", "{2}"])
_PATTERNS = st.recursive(
    st.sampled_from(_ATOMS) | st.sampled_from(["^", "$", r"\A", r"\Z", r"\b", r"\B"]),
    lambda inner: st.one_of(
        st.tuples(inner, inner).map("".join),
        st.tuples(inner, inner).map("|".join),
        st.tuples(inner, _QUANTIFIERS).map(lambda p: f"(?:{p[0]}){p[1]}"),
        inner.map(lambda p: f"({p})"),
    ),
    max_leaves=6,
)


@settings(max_examples=400, deadline=None)
@given(pattern=_PATTERNS, texts=st.lists(st.text(alphabet="ab_ é1٣\n-.KÉs😀\u212a", max_size=12), min_size=4,
                                         max_size=4), flags=st.sampled_from(["", "(?i)", "(?s)", "(?m)"]))
def test_spans_equal_python_s_on_generated_patterns(pattern: str, texts: list[str], flags: str) -> None:
    """Whatever RE2 accepts finds Python's spans; what it cannot match as Python does, it refuses."""
    pattern = flags + pattern
    try:
        if re.compile(pattern).match("") is not None or re._parser.parse(pattern).getwidth()[0] == 0:  # type: ignore[attr-defined]
            return  # a pattern that may match nothing: the guard leaves empty matches out anyway
        compiled = compile_policy_regex(pattern)
    except (re.error, ValueError) as exc:
        assert isinstance(exc, re.error) or "RE2 cannot" in str(exc), exc
        return
    for text in texts:
        assert list(compiled.spans(text)) == python_spans(pattern, text), (pattern, text)


@pytest.mark.parametrize("cls", [r"\w", r"\W", r"\d", r"\D", r"\s", r"\S"])
def test_classes_are_python_s_on_every_assigned_character(cls: str) -> None:
    assigned = "".join(chr(c) for c in range(sys.maxunicode + 1)
                       if unicodedata.category(chr(c)) not in ("Cn", "Cs"))
    assert re2_spans(cls + "+", assigned) == python_spans(cls + "+", assigned)


def test_case_insensitive_literals_fold_as_python_s_but_for_the_dotless_i() -> None:
    differ = []
    for char in map(chr, range(0x1F000)):  # the last cased letters (Adlam) end at U+1E94B
        variants = {v for v in (char.lower(), char.upper(), char.casefold(), char.title()) if len(v) == 1} - {char}
        if not variants or unicodedata.category(char) == "Cs":
            continue
        compiled = compile_policy_regex(re.escape(char), re.IGNORECASE)
        differ += [(char, v) for v in variants
                   if bool(list(compiled.spans(v))) != bool(re.fullmatch(re.escape(char), v, re.IGNORECASE))]
    assert differ == [("ı", "I")]  # documented in re2_translation


def test_offsets_are_characters_on_accented_and_emoji_text() -> None:
    text = "Café ☕ for naïve 👩🏽‍💻 users: sk-ABCDEFGHIJKLMNOPQRSTUVWXYZ and café."
    for pattern in [r"\bcafé\b", r"sk-[A-Za-z]{20,}", r"👩🏽‍💻", r"\bnaïve\b", r"users"]:
        found = re2_spans(pattern, text, re.IGNORECASE)
        assert found and found == python_spans(pattern, text, re.IGNORECASE)
        assert all(re.fullmatch(pattern, text[s:e], re.IGNORECASE) for s, e in found)


def test_keyword_terms_keep_unicode_word_boundaries() -> None:
    guard = KeywordsGuard(KeywordsConfig(terms=["café", "ban", "naïve user"]))
    texts = ["un café noir, cafés, décafé", "banana ban BAN_", "a naïve\n user, naïveuser"]
    found = [(f.label, texts[f.segment][f.start:f.end]) for f in guard.scan([Segment(t) for t in texts],
                                                                           GuardContext("input"))]
    assert found == [("café", "café"), ("ban", "ban"), ("naïve user", "naïve\n user")]
    assert guard.kind == "inline"


# --- engine: python runs in the pool, under its timeout ----------------------------------------------

def test_engine_python_makes_a_keywords_entry_a_pool_guard() -> None:
    assert KeywordsGuard(KeywordsConfig(patterns=["x"], engine="python")).kind == "cpu"
    assert KeywordsGuard(KeywordsConfig(patterns=["x"])).kind == "inline"
    assert KeywordsGuard(KeywordsConfig(terms=["x"], engine="python")).kind == "inline"  # terms are always RE2


def test_a_backtracking_search_past_its_timeout_raises() -> None:
    guard = KeywordsGuard(KeywordsConfig(patterns=[CATASTROPHIC], engine="python", regex_timeout_ms=50))
    with pytest.raises(PatternTimeout):
        guard.scan([Segment(RUN_OF_AS)], GuardContext("input"))
    assert [(f.start, f.end) for f in guard.scan([Segment("xaaa")], GuardContext("input"))] == [(1, 4)]


def test_an_abandoned_scan_stops_before_its_next_search() -> None:
    compiled = compile_policy_regex("a", 0, "python")
    stop = threading.Event()
    stop.set()
    with abandonable(stop), pytest.raises(ScanAbandoned):
        list(compiled.spans("aaa"))


def test_the_timeout_is_a_guard_error_that_on_error_decides() -> None:
    engine = Engine(2)
    try:
        for on_error, verdict in [("block", "blocked"), ("allow", "flagged")]:  # a failure is never a clean pass
            policy = parse_policy(keywords_policy(
                f"{{guard: keywords, action: block, engine: python, regex_timeout_ms: 50, on_error: {on_error}, "
                f"patterns: ['{CATASTROPHIC}']}}"), "t")
            entries = policy.chains["default"].input
            result = asyncio.run(engine.run(policy, entries, [Segment(RUN_OF_AS)], GuardContext("input")))
            assert result.verdict == verdict
            assert [(f.kind, f.detail.split(" ")[0]) for f in result.failures] == [("error", "PatternTimeout")]
    finally:
        engine.close()


# --- PII custom patterns -------------------------------------------------------------------------------

PII_TEXTS = ["Employee EMP-204811 and emp-99 and EMP-123456x, EMP-654321.", "Ticket ÉMP-123456 for Zoë: EMP-000001",
             "line\nEMP-111111\nEMP-222222", "nothing here 😀"]


@pytest.mark.parametrize("regex", [r"EMP-\d{6}", r"\bEMP-\d{6}\b", r"^EMP-\d{6}$", r"EMP.\d+"])
def test_a_pii_pattern_on_re2_reports_what_presidio_s_recognizer_reports(regex: str) -> None:
    ours = PolicyPatternRecognizer(CustomPattern(name="EMPLOYEE_ID", regex=regex, score=0.7), "en", 250)
    theirs = PatternRecognizer(supported_entity="EMPLOYEE_ID", name="policy:EMPLOYEE_ID",
                               patterns=[Pattern("EMPLOYEE_ID", regex, 0.7)])
    assert ours._compiled.engine == "re2"
    for text in PII_TEXTS:
        expected = [(r.entity_type, r.start, r.end, r.score) for r in theirs.analyze(text, ["EMPLOYEE_ID"])]
        assert [(r.entity_type, r.start, r.end, r.score) for r in ours.analyze(text, ["EMPLOYEE_ID"])] == expected
    assert theirs.global_regex_flags == PATTERN_FLAGS


def test_a_pii_guard_redacts_with_an_re2_pattern() -> None:
    config = PiiConfig(nlp="pattern", entities=[], style="type", score_threshold=0.5,
                       patterns=[CustomPattern(name="BADGE", regex=r"\bB-\d{4}\b", score=0.9)])
    text = "Zoë's badge b-1234, not AB-1234 nor B-12345; ÉB-1111; B-4321 alone."
    found = [(f.label, text[f.start:f.end], f.replacement)
             for f in PiiGuard(config).scan([Segment(text)], GuardContext("input"))
             if f.start is not None and f.end is not None]
    assert found == [("BADGE", "b-1234", "<BADGE>"), ("BADGE", "B-4321", "<BADGE>")]  # case-insensitive, as Presidio


def test_a_pii_pattern_on_engine_python_past_its_timeout_fails_the_scan() -> None:
    config = PiiConfig(nlp="pattern", entities=[], regex_timeout_ms=50,
                       patterns=[CustomPattern(name="RUN", regex=CATASTROPHIC, engine="python")])
    with pytest.raises(PatternTimeout):
        PiiGuard(config).scan([Segment(RUN_OF_AS)], GuardContext("input"))


def test_pii_pattern_keys_are_validated() -> None:
    with pytest.raises(PolicyError, match=r"patterns\.0: regex: .* needs a negative lookbehind"):
        parse_policy(keywords_policy("{guard: pii, action: redact, patterns: [{name: X, regex: '(?<!a)b'}]}"), "t")


# --- the issue's test, through a real proxy ---------------------------------------------------------------

def chat(proxy: RunningProxy, text: str) -> tuple[int, str, str]:
    """(status, verdict header, answer or error message)."""
    try:
        raw = proxy.client(timeout=60).chat.completions.with_raw_response.create(
            model="demo", messages=[{"role": "user", "content": text}])
    except openai.APIStatusError as exc:
        return exc.status_code, exc.response.headers["x-guardproxy-verdict"], str(exc.body)
    return raw.status_code, raw.headers["x-guardproxy-verdict"], raw.parse().choices[0].message.content or ""


@pytest.mark.timeout(60)
def test_re2_pattern_on_the_catastrophic_input_neither_stalls_nor_hangs(
    start_proxy: Callable[..., RunningProxy]
) -> None:
    """On the event loop (keywords run inline), Python's re would never finish this request, and no
    other request would be answered meanwhile; RE2 answers both in linear time."""
    proxy = start_proxy(policy=keywords_policy(
        f"{{name: runs, guard: keywords, action: block, label: run, patterns: ['{CATASTROPHIC}']}}"))
    with ThreadPoolExecutor(8) as pool:
        bad = [pool.submit(chat, proxy, RUN_OF_AS), pool.submit(chat, proxy, RUN_OF_AS[:-1])]
        ordinary = [pool.submit(chat, proxy, f"hello {n}") for n in range(12)]
        assert [f.result() for f in ordinary] == [(200, "pass", f"You said: hello {n}") for n in range(12)]
        no_match, match = (f.result() for f in bad)
    assert no_match == (200, "pass", "You said: " + RUN_OF_AS)
    assert match[:2] == (400, "blocked")  # the pattern did run: 40,000 a's and nothing after match it


@pytest.mark.timeout(60)
def test_engine_python_on_the_catastrophic_answer_ends_as_a_guard_error_without_stalling_others(
    start_proxy: Callable[..., RunningProxy], recorder: DemoRecorder
) -> None:
    """The backtracking pattern runs in the guard pool with the GIL released: while it grinds on the
    upstream's echo of 40,000 a's, other requests through the same guard are answered; then its
    timeout fails the scan and on_error (block) withholds the answer."""
    proxy = start_proxy(policy=(
        "version: 1\nname: p\nchains:\n  default:\n    output:\n"
        f"      - {{name: runs, guard: keywords, action: block, engine: python, regex_timeout_ms: 3000, "
        f"timeout_ms: 30000, patterns: ['{CATASTROPHIC}']}}\n"))
    with ThreadPoolExecutor(1) as pool:
        bad = pool.submit(chat, proxy, RUN_OF_AS)
        assert wait_until(lambda: any(RUN_OF_AS.encode() in r.body for r in recorder.requests))
        answered = []
        while len(answered) < 5 and not bad.done():
            answered.append(chat(proxy, f"hello {len(answered)}"))
        assert not bad.done()  # five answered while the catastrophic scan was still running
        assert answered == [(200, "pass", f"You said: hello {n}") for n in range(5)]
        status, verdict, _ = bad.result()
    assert (status, verdict) == (200, "blocked")
