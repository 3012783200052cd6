"""``--upstream-retries N`` (``guardproxy/proxy/retry.py``): a connect error or a 502/503
answered before any byte is retried, with full-jitter backoff, up to N times; a 4xx, a
500 or 504, a stream that has started, and a pass-through body streamed from the client
never are. Unit tests of the loop, then end to end through the openai and anthropic SDKs
against the proxy on loopback, reading ``guardproxy_upstream_retries_total`` from /metrics.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any

import aiohttp
import anthropic
import httpx
import openai
import pytest

from guardproxy.proxy.retry import RetryPolicy, failure_kind, with_retries
from tests.conftest import RunningProxy, wait_until
from tests.scripted_upstream import Answer, LateUpstream, ScriptedUpstream, chat_answer, chat_chunk, messages_answer
from tests.servers import ThreadedServer
from tests.test_metrics import scrape

GUARDED = """
version: 1
name: guarded
chains:
  default:
    input: [{name: banned, guard: keywords, action: block, terms: [zanzibar], label: banned}]
    output: [{name: banned, guard: keywords, action: block, terms: [zanzibar], label: banned}]
"""
PLAIN = "version: 1\nname: plain\nunknown_paths: pass\nchains: {default: {}}\n"
USER = [{"role": "user", "content": "When does the ferry leave?"}]
ANSWER = chat_answer({"content": "At nine."})
STREAM = [chat_chunk(content="At "), chat_chunk(content="nine."), chat_chunk(finish="stop"), "[DONE]"]
Start = Callable[..., tuple[RunningProxy, ScriptedUpstream]]


# The loop itself.

class FakeResponse:
    def __init__(self, status: int) -> None:
        self.status = status
        self.closed = False

    def close(self) -> None:
        self.closed = True


def refused() -> aiohttp.ClientConnectorError:
    return aiohttp.ClientConnectorError.__new__(aiohttp.ClientConnectorError)


async def run(outcomes: list[Any], retries: int) -> tuple[Any, list[str], int]:
    """What ``with_retries`` returns (or raises) over scripted outcomes, the retries it noted, the calls."""
    calls = 0
    noted: list[str] = []
    left = list(outcomes)

    async def send() -> Any:
        nonlocal calls
        calls += 1
        outcome = left.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    try:
        result = await with_retries(send, RetryPolicy(retries, base_seconds=0.0), noted)
    except aiohttp.ClientError as exc:
        result = exc
    return result, noted, calls


async def test_502_and_503_are_retried_and_closed_before_the_next_try() -> None:
    failed = [FakeResponse(502), FakeResponse(503)]
    answer, noted, calls = await run([*failed, FakeResponse(200)], retries=2)
    assert answer.status == 200 and calls == 3 and noted == ["status_502", "status_503"]
    assert all(response.closed for response in failed) and not answer.closed


async def test_the_last_attempts_answer_is_the_callers_when_retries_run_out() -> None:
    last = FakeResponse(503)
    answer, noted, calls = await run([FakeResponse(503), last, FakeResponse(200)], retries=1)
    assert answer is last and not last.closed and calls == 2 and noted == ["status_503"]


@pytest.mark.parametrize("status", [200, 400, 401, 404, 408, 409, 429, 500, 504])
async def test_other_statuses_are_never_retried(status: int) -> None:
    answer, noted, calls = await run([FakeResponse(status), FakeResponse(200)], retries=3)
    assert answer.status == status and calls == 1 and noted == []


async def test_connect_errors_are_retried_other_failures_are_not() -> None:
    answer, noted, calls = await run([refused(), aiohttp.ConnectionTimeoutError(), FakeResponse(200)], retries=2)
    assert answer.status == 200 and noted == ["unreachable", "connect_timeout"] and calls == 3
    broke = aiohttp.ServerDisconnectedError()  # the request may have reached the model
    answer, noted, calls = await run([broke, FakeResponse(200)], retries=2)
    assert answer is broke and calls == 1
    exhausted, noted, calls = await run([refused(), refused(), FakeResponse(200)], retries=1)
    assert isinstance(exhausted, aiohttp.ClientConnectorError) and calls == 2


def test_a_certificate_error_is_not_worth_a_retry() -> None:
    certificate = aiohttp.ClientConnectorCertificateError.__new__(aiohttp.ClientConnectorCertificateError)
    assert failure_kind(certificate) is None
    assert failure_kind(refused()) == "unreachable"


def test_backoff_is_full_jitter_under_a_growing_cap() -> None:
    policy = RetryPolicy(5, base_seconds=0.2, cap_seconds=2.0)
    for attempt in range(8):
        delays = [policy.delay(attempt) for _ in range(200)]
        assert all(0.0 <= d <= min(2.0, 0.2 * 2 ** attempt) for d in delays)
        assert len(set(delays)) > 1  # jittered, not a fixed step


# End to end.

@pytest.fixture
def retrying(scripted_server: tuple[ScriptedUpstream, ThreadedServer], start_proxy: Callable[..., RunningProxy]
             ) -> Start:
    upstream, server = scripted_server

    def start(retries: int, policy: str = GUARDED, **settings: Any) -> tuple[RunningProxy, ScriptedUpstream]:
        upstream.script()
        proxy = start_proxy(policy=policy, upstream=server.url + "/v1", upstream_retries=retries, **settings)
        return proxy, upstream

    return start


def counts(proxy: RunningProxy, name: str) -> dict[str, float]:
    return {labels["kind"]: value for sample, labels, value in scrape(proxy.url) if sample == name and value}


def retried(proxy: RunningProxy) -> dict[str, float]:
    return counts(proxy, "guardproxy_upstream_retries_total")


def errors(proxy: RunningProxy) -> dict[str, float]:
    return counts(proxy, "guardproxy_upstream_errors_total")


def unavailable(status: int) -> Answer:
    return Answer(json={"error": {"message": "Try again.", "type": "server_error", "param": None, "code": None}},
                  status=status)


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("policy", [GUARDED, PLAIN], ids=["guarded", "unguarded"])
def test_a_503_then_an_answer_is_retried_with_the_same_body(retrying: Start, policy: str, stream: bool) -> None:
    proxy, upstream = retrying(2, policy)
    upstream.script(unavailable(503), Answer(events=STREAM) if stream else Answer(json=ANSWER))
    client = proxy.client()
    if stream:
        text = "".join(c.choices[0].delta.content or "" for c in client.chat.completions.create(
            model="m", messages=USER, stream=True) if c.choices)  # type: ignore[call-overload]
    else:
        text = client.chat.completions.create(model="m", messages=USER).choices[0].message.content  # type: ignore[arg-type]
    assert text == "At nine."
    assert len(upstream.received) == 2 and upstream.received[0].body == upstream.received[1].body
    assert retried(proxy) == {"status_503": 1}
    assert errors(proxy) == {}  # the request's upstream outcome is the last attempt's


def test_retries_run_out_and_the_last_502_is_relayed(retrying: Start) -> None:
    proxy, upstream = retrying(2)
    upstream.script(unavailable(502), unavailable(502), unavailable(502), Answer(json=ANSWER))
    with pytest.raises(openai.APIStatusError) as caught:
        proxy.client().chat.completions.create(model="m", messages=USER)  # type: ignore[arg-type]
    assert caught.value.status_code == 502 and caught.value.body["message"] == "Try again."  # type: ignore[index]
    assert len(upstream.received) == 3
    assert retried(proxy) == {"status_502": 2}
    assert errors(proxy) == {"status_5xx": 1}


def test_without_the_flag_nothing_is_retried(retrying: Start) -> None:
    proxy, upstream = retrying(0)
    upstream.script(unavailable(503), Answer(json=ANSWER))
    with pytest.raises(openai.APIStatusError) as caught:
        proxy.client().chat.completions.create(model="m", messages=USER)  # type: ignore[arg-type]
    assert caught.value.status_code == 503 and len(upstream.received) == 1
    assert retried(proxy) == {}


@pytest.mark.parametrize("status", [400, 429, 500, 504])
def test_a_4xx_500_or_504_is_never_retried(retrying: Start, status: int) -> None:
    proxy, upstream = retrying(3)
    upstream.script(unavailable(status), Answer(json=ANSWER))
    with pytest.raises(openai.APIStatusError) as caught:
        proxy.client().chat.completions.create(model="m", messages=USER)  # type: ignore[arg-type]
    assert caught.value.status_code == status and len(upstream.received) == 1
    assert retried(proxy) == {}


def test_a_stream_that_started_is_never_retried(retrying: Start) -> None:
    proxy, upstream = retrying(3)
    upstream.script(Answer(events=STREAM, break_after=1), Answer(events=STREAM))
    with pytest.raises(openai.APIError, match="connection failed"):
        for _ in proxy.client().chat.completions.create(model="m", messages=USER, stream=True):  # type: ignore[call-overload]
            pass
    assert len(upstream.received) == 1
    assert retried(proxy) == {} and errors(proxy) == {"error": 1}


def test_anthropic_messages_are_retried_too(retrying: Start) -> None:
    proxy, upstream = retrying(1)
    overloaded = Answer(json={"type": "error", "error": {"type": "api_error", "message": "Try again."}}, status=503)
    upstream.script(overloaded, Answer(json=messages_answer("At nine.")))
    client = anthropic.Anthropic(base_url=proxy.url, api_key="sk-ant-client", max_retries=0, timeout=20)
    message = client.messages.create(model="m", max_tokens=20, messages=USER)  # type: ignore[arg-type]
    assert message.content[0].text == "At nine."  # type: ignore[union-attr]
    assert [r.path for r in upstream.received] == ["/v1/messages"] * 2
    assert retried(proxy) == {"status_503": 1}


def test_pass_through_bodies_streamed_from_the_client_are_not_retried(retrying: Start) -> None:
    proxy, upstream = retrying(3, PLAIN)
    upstream.script(unavailable(503), Answer(json={"id": "file-1"}))
    assert httpx.post(proxy.url + "/v1/files", json={"purpose": "batch"}, timeout=20).status_code == 503
    assert len(upstream.received) == 1
    upstream.script(unavailable(503), Answer(json={"id": "file-1"}))
    response = httpx.get(proxy.url + "/v1/files/file-1", timeout=20)  # no body: it can be sent again
    assert response.status_code == 200 and response.json() == {"id": "file-1"}
    assert len(upstream.received) == 2
    assert retried(proxy) == {"status_503": 1}


@pytest.fixture
def late() -> Iterator[LateUpstream]:
    upstream = LateUpstream()
    yield upstream
    upstream.close()


@pytest.mark.timeout(60)
def test_an_upstream_that_refuses_then_comes_up_answers_on_a_retry(
        start_proxy: Callable[..., RunningProxy], late: LateUpstream, caplog: pytest.LogCaptureFixture) -> None:
    proxy = start_proxy(policy=GUARDED, upstream=late.url + "/v1", upstream_retries=30)
    late.upstream.script(Answer(json=ANSWER))
    outcome: list[Any] = []

    def call() -> None:
        try:
            outcome.append(proxy.client().chat.completions.create(model="m", messages=USER))  # type: ignore[arg-type]
        except openai.APIError as exc:
            outcome.append(exc)

    caplog.set_level(logging.WARNING, logger="guardproxy.proxy")
    caller = threading.Thread(target=call)
    caller.start()
    assert wait_until(lambda: any("(unreachable); retry" in r.getMessage() for r in caplog.records), timeout=20)
    late.open()  # up between two retries
    caller.join(30)
    assert outcome and not isinstance(outcome[0], Exception), outcome
    assert outcome[0].choices[0].message.content == "At nine."
    assert len(late.upstream.received) == 1
    assert retried(proxy).get("unreachable", 0) >= 1 and errors(proxy) == {}


def test_an_upstream_that_stays_down_is_a_502_after_the_retries(
        start_proxy: Callable[..., RunningProxy], late: LateUpstream) -> None:
    proxy = start_proxy(policy=GUARDED, upstream=late.url + "/v1", upstream_retries=2)
    with pytest.raises(openai.APIStatusError) as caught:
        proxy.client().chat.completions.create(model="m", messages=USER)  # type: ignore[arg-type]
    assert caught.value.status_code == 502
    assert caught.value.body["code"] == "upstream_unreachable"  # type: ignore[index]
    assert retried(proxy) == {"unreachable": 2} and errors(proxy) == {"unreachable": 1}
