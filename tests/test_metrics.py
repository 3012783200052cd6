"""Metric emission: requests through the proxy and the demo upstream, then ``GET /metrics``."""

from __future__ import annotations

import base64
from collections.abc import Callable

import httpx
import openai
import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from guardproxy.config import Settings
from guardproxy.http.app import create_app
from tests.conftest import BASIC_POLICY, PII_VALUES, REPO, RunningProxy, wait_until
from tests.servers import ThreadedServer

Samples = list[tuple[str, dict[str, str], float]]


def scrape(url: str) -> Samples:
    response = httpx.get(url + "/metrics")
    response.raise_for_status()
    return [(s.name, dict(s.labels), s.value)
            for family in text_string_to_metric_families(response.text) for s in family.samples]


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum of every sample of ``name`` whose labels include ``labels``."""
    return sum(value for sample, sample_labels, value in samples
               if sample == name and all(sample_labels.get(k) == v for k, v in labels.items()))


def chat(proxy: RunningProxy, text: str, *, reply: str | None = None, model: str = "demo",
         headers: dict[str, str] | None = None, **body: object) -> httpx.Response:
    extra = {"x-demo-reply-b64": base64.b64encode(reply.encode()).decode()} if reply else {}
    return httpx.post(proxy.url + "/v1/chat/completions", headers={**extra, **(headers or {})}, timeout=20,
                      json={"model": model, "messages": [{"role": "user", "content": text}], **body})


def test_blocked_input_is_counted(proxy: RunningProxy) -> None:
    assert chat(proxy, "say the forbidden phrase").status_code == 400
    samples = scrape(proxy.url)
    assert total(samples, "guardproxy_requests_total", route="chat", model="demo", verdict="blocked",
                 status_code="400") == 1
    assert total(samples, "guardproxy_violations_total", policy="testpolicy", chain="default", guard="keywords",
                 stage="input", action="block", mode="enforce", label="banned") == 1
    assert total(samples, "guardproxy_overhead_seconds_count", route="chat", stage="input") == 1
    assert total(samples, "guardproxy_upstream_duration_seconds_count") == 0  # never sent upstream
    assert total(samples, "guardproxy_guard_duration_seconds_count", guard="keywords", stage="input") == 2


def test_answer_with_output_findings_and_tokens(proxy: RunningProxy) -> None:
    response = chat(proxy, "key sk-abcdefghijklmnopqrstuvwx", reply="Enjoy guaranteed returns!",
                    model="Demo-2024-08-06")
    assert response.status_code == 200
    samples = scrape(proxy.url)
    assert total(samples, "guardproxy_requests_total", route="chat", model="demo", verdict="redacted",
                 status_code="200") == 1
    assert total(samples, "guardproxy_violations_total", stage="input", action="redact", label="SECRET") == 1
    assert total(samples, "guardproxy_violations_total", stage="output", action="flag", label="promise") == 1
    usage = response.json()["usage"]
    assert total(samples, "guardproxy_tokens_total", model="demo", direction="input") == usage["prompt_tokens"]
    assert total(samples, "guardproxy_tokens_total", model="demo", direction="output") == usage["completion_tokens"]
    for stage in ("input", "output"):
        assert total(samples, "guardproxy_overhead_seconds_count", route="chat", stage=stage) == 1
    assert total(samples, "guardproxy_upstream_duration_seconds_count", route="chat") == 1
    assert total(samples, "guardproxy_time_to_first_token_seconds_count") == 0  # not streamed


def test_stream_is_counted_when_it_ends(proxy: RunningProxy) -> None:
    _, finishes = proxy.stream_reply("Here it is: the nuclear launch code is 0000 and more words follow.")
    assert finishes == ["content_filter"]
    proxy.stream_reply("A calm answer with enough words to pass the hold-back window.")
    samples = scrape(proxy.url)
    assert total(samples, "guardproxy_requests_total", route="chat", verdict="blocked", status_code="200") == 1
    assert total(samples, "guardproxy_requests_total", route="chat", verdict="pass", status_code="200") == 1
    assert total(samples, "guardproxy_violations_total", stage="output", action="block", label="stopword") == 1
    assert total(samples, "guardproxy_time_to_first_token_seconds_count", route="chat") == 2
    assert total(samples, "guardproxy_overhead_seconds_count", route="chat", stage="output") == 2
    assert total(samples, "guardproxy_guard_duration_seconds_count", stage="output") >= 3


def test_streamed_usage_is_counted(proxy: RunningProxy) -> None:
    stream = proxy.client().chat.completions.create(
        model="demo", messages=[{"role": "user", "content": "hello there"}], stream=True,
        stream_options={"include_usage": True})
    usage = [chunk.usage for chunk in stream if chunk.usage][-1]
    samples = scrape(proxy.url)
    assert total(samples, "guardproxy_tokens_total", direction="input") == usage.prompt_tokens
    assert total(samples, "guardproxy_tokens_total", direction="output") == usage.completion_tokens


def test_upstream_errors_by_kind(start_proxy: Callable[..., RunningProxy]) -> None:
    proxy = start_proxy()
    assert chat(proxy, "hi", headers={"x-demo-status": "503"}).status_code == 503
    assert chat(proxy, "hi", headers={"x-demo-status": "429"}).status_code == 429
    dead = start_proxy(upstream="http://127.0.0.1:9/v1")
    assert chat(dead, "hi").status_code == 502
    samples = scrape(proxy.url)
    assert total(samples, "guardproxy_upstream_errors_total", kind="status_5xx") == 1
    assert total(samples, "guardproxy_upstream_errors_total", kind="status_429") == 1
    assert total(samples, "guardproxy_requests_total", status_code="503", verdict="pass") == 1
    assert total(scrape(dead.url), "guardproxy_upstream_errors_total", kind="unreachable") == 1


TIMEOUT_POLICY = """
version: 1
name: slow
chains:
  default:
    input:
      - {name: pii, guard: pii, action: redact, timeout_ms: 1, on_error: allow}
      - {name: pii_strict, guard: pii, action: redact, timeout_ms: 1, on_error: block, entities: [PERSON]}
"""


def test_guard_timeouts_by_outcome(start_proxy: Callable[..., RunningProxy]) -> None:
    proxy = start_proxy(TIMEOUT_POLICY)
    for i in range(3):
        chat(proxy, f"My name is Walter White number {i}, I live at 308 Negra Arroyo Lane, Albuquerque. " * 20)
    samples = scrape(proxy.url)
    assert total(samples, "guardproxy_guard_errors_total", guard="pii", stage="input", kind="timeout",
                 outcome="bypassed") >= 1
    assert total(samples, "guardproxy_guard_errors_total", kind="timeout", outcome="blocked") >= 1
    # the block a failing guard causes is a guard error, not a finding
    assert total(samples, "guardproxy_violations_total", label="guard_timeout") == 0


def test_policy_reloads_and_version(start_proxy: Callable[..., RunningProxy]) -> None:
    proxy = start_proxy()
    first = httpx.get(proxy.url + "/readyz").json()["policy"]
    assert total(scrape(proxy.url), "guardproxy_policy_info", policy="testpolicy", version=first) == 1
    proxy.policy_path.write_text(BASIC_POLICY.replace("action: block, terms: [forbidden", "action: blok, terms: [x"))
    assert wait_until(lambda: total(scrape(proxy.url), "guardproxy_policy_reloads_total", result="rejected") == 1)
    proxy.policy_path.write_text(BASIC_POLICY.replace("forbidden phrase", "another phrase"))
    assert wait_until(lambda: total(scrape(proxy.url), "guardproxy_policy_reloads_total", result="ok") == 1)
    samples = scrape(proxy.url)
    second = httpx.get(proxy.url + "/readyz").json()["policy"]
    assert second != first
    assert total(samples, "guardproxy_policy_info", version=second) == 1
    assert total(samples, "guardproxy_policy_info", version=first) == 0


def test_other_routes(proxy: RunningProxy) -> None:
    assert httpx.get(proxy.url + "/v1/models").status_code == 200
    httpx.get(proxy.url + "/v1/files")
    assert httpx.post(proxy.url + "/v1/guardrails/check", json={"text": "forbidden phrase"}).status_code == 200
    httpx.get(proxy.url + "/healthz")
    samples = scrape(proxy.url)
    assert total(samples, "guardproxy_requests_total", route="models", model="none", verdict="pass",
                 status_code="200") == 1
    assert total(samples, "guardproxy_requests_total", route="passthrough") == 1
    assert total(samples, "guardproxy_requests_total", route="check", verdict="blocked") == 1
    assert total(samples, "guardproxy_requests_total") == 3  # probes and /metrics are not counted


def test_no_pii_value_reaches_metrics(upstream_server: ThreadedServer) -> None:
    """The shipped policy redacts these values; none of them may appear in any label."""
    registry = CollectorRegistry()
    settings = Settings(upstream=upstream_server.url + "/v1", policy=str(REPO / "policies"))
    values = PII_VALUES
    with ThreadedServer(create_app(settings, {}, registry=registry)) as server:
        client = openai.OpenAI(base_url=server.url + "/v1", api_key="sk-client", max_retries=0)
        text = f"I am {values[0]}, email {values[1]}, card {values[2]}, phone {values[3]}, key {values[4]}"
        client.chat.completions.create(model="demo", messages=[{"role": "user", "content": text}])
        list(client.chat.completions.create(model="demo", messages=[{"role": "user", "content": text}],
                                            stream=True))
        exposed = httpx.get(server.url + "/metrics").text
        samples = scrape(server.url)
    assert total(samples, "guardproxy_violations_total", guard="pii", stage="input", label="EMAIL_ADDRESS") == 2
    assert total(samples, "guardproxy_violations_total", label="github_pat") >= 2
    for value in values:
        for part in (value, *value.split()):
            if len(part) > 4:
                assert part.lower() not in exposed.lower()


def test_metrics_can_be_turned_off(start_proxy: Callable[..., RunningProxy]) -> None:
    proxy = start_proxy(metrics=False)
    assert chat(proxy, "hello").status_code == 200
    assert httpx.get(proxy.url + "/metrics").status_code == 404


@pytest.mark.parametrize("path", ["/v1/embeddings", "/v1/completions"])
def test_routes_of_other_endpoints(proxy: RunningProxy, path: str) -> None:
    body = {"model": "demo", "input": "hello"} if path.endswith("embeddings") else {"model": "demo", "prompt": "hi"}
    assert httpx.post(proxy.url + path, json=body).status_code == 200
    route = path.rsplit("/", 1)[1]
    samples = scrape(proxy.url)
    assert total(samples, "guardproxy_requests_total", route=route, status_code="200") == 1
    assert total(samples, "guardproxy_tokens_total", direction="input") >= 1


def test_check_endpoint_findings_count_as_violations(proxy: RunningProxy) -> None:
    response = httpx.post(proxy.url + "/v1/guardrails/check",
                          json={"text": "say the forbidden phrase", "stage": "input"})
    assert response.json()["verdict"] == "blocked"
    metrics = httpx.get(proxy.url + "/metrics").text
    violation = [line for line in metrics.splitlines()
                 if line.startswith("guardproxy_violations_total{") and 'guard="keywords"' in line
                 and 'label="banned"' in line and 'stage="input"' in line]
    assert violation and violation[0].endswith(" 1.0")
