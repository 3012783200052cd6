"""POST /v1/guardrails/check: guards as a service, no upstream call."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from guardproxy.demo import DemoRecorder
from tests.conftest import RunningProxy


def check(proxy: RunningProxy, **body: object) -> httpx.Response:
    return httpx.post(proxy.url + "/v1/guardrails/check", json=body)


def test_findings_index_the_submitted_text(proxy: RunningProxy, recorder: DemoRecorder) -> None:
    text = "héllo 🙂 sk-ABCDEFGHIJKLMNOPQRSTUVWXYZ done"
    response = check(proxy, text=text, stage="input")
    body = response.json()
    assert response.status_code == 200 and response.headers["x-guardproxy-verdict"] == "redacted"
    assert body["verdict"] == "redacted" and body["text"] == "héllo 🙂 [SECRET] done"
    [finding] = body["findings"]
    assert text[finding["start"]:finding["end"]] == "sk-ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    assert finding == {"guard": "keywords", "name": "secrets", "label": "SECRET", "score": 1.0,
                       "start": finding["start"], "end": finding["end"], "action": "redact", "mode": "enforce"}
    assert body["policy"].startswith("testpolicy@")
    assert recorder.requests == []


def test_output_stage_block_and_pass(proxy: RunningProxy) -> None:
    blocked = check(proxy, text="the nuclear launch code", stage="output").json()
    assert blocked["verdict"] == "blocked" and blocked["message"] == "Withheld by test policy."
    assert blocked["text"] == "the nuclear launch code"  # the caller's own text, unchanged
    assert check(proxy, text="fine", stage="output").json() == {
        "verdict": "pass", "text": "fine", "policy": blocked["policy"], "chain": "default",
        "findings": [], "errors": []}


def test_bad_check_requests(proxy: RunningProxy) -> None:
    assert check(proxy, stage="input").status_code == 400
    assert check(proxy, text="x", stage="sideways").status_code == 400
    assert check(proxy, text="x", surprise=1).status_code == 400
    missing = check(proxy, text="x", chain="nope")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "chain_not_found"
    assert check(proxy, text="x", policy="other").json()["error"]["code"] == "policy_not_found"
    bad_json = httpx.post(proxy.url + "/v1/guardrails/check", content=b"{nope")
    assert bad_json.status_code == 400 and set(bad_json.json()["error"]) == {"message", "type", "param", "code"}


def test_monitor_mode_reports_would_be_action(start_proxy: Callable[..., RunningProxy]) -> None:
    proxy = start_proxy(policy="version: 1\nname: m\ndefaults: {mode: monitor}\nchains:\n  default:\n"
                               "    input:\n      - {guard: keywords, action: block, terms: [danger]}\n")
    body = check(proxy, text="danger ahead").json()
    assert body["verdict"] == "flagged" and body["text"] == "danger ahead"
    assert body["findings"][0]["action"] == "block" and body["findings"][0]["mode"] == "monitor"
    response = proxy.client().chat.completions.with_raw_response.create(
        model="demo", messages=[{"role": "user", "content": "danger ahead"}])
    assert response.headers["x-guardproxy-verdict"] == "flagged"  # not blocked: monitor only records


def test_other_methods_on_the_check_path_get_405(proxy: RunningProxy, recorder: DemoRecorder) -> None:
    response = httpx.get(proxy.url + "/v1/guardrails/check")
    assert response.status_code == 405 and response.json()["error"]["code"] == "method_not_allowed"
    assert recorder.requests == []
