"""The request path under fuzzing: a real proxy (uvicorn, loopback) with input and output
guards (keywords block and redact, PII redaction with restore, flag, annotate) in front
of the scripted upstream, which answers ``{"ok": true}`` unless a test scripts a valid
answer in the API's shape.

Sent to every guarded path (chat, completions, embeddings, Responses, Messages,
count_tokens, Azure's deployment paths) and to ``/v1/guardrails/check``: JSON of
random shape, valid payloads with values of the wrong type anywhere, random bytes,
invalid UTF-8, deep nesting, huge numbers, ``NaN``, wrong content types and
encodings, other methods and spellings of the path; and through the openai and
anthropic SDKs, valid requests meeting valid answers, JSON and streamed.

What must hold, whatever came in:

- no 5xx: the upstream here never fails, so any 5xx is the proxy's own (a 500
  ``proxy_error`` above all, which is always a bug);
- the proxy logs no unhandled exception (which is how a crash after the answer
  started shows, when the status was already sent) and no guard raises;
- every error has its API's shape: OpenAI's ``{"error": {...}}``, Anthropic's
  ``{"type": "error", "error": {...}}`` on the Messages paths;
- what reaches the upstream is the client's body, or it with only the guarded texts
  changed (no number, key or structure rewritten on the way).

Crashes found here are kept as regression cases (``REGRESSIONS``); findings fixed
elsewhere are the tests at the end.
"""

from __future__ import annotations

import json
import posixpath
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote

import anthropic
import openai
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.api_payloads import (
    BANNED,
    EMAIL,
    REQUESTS,
    RESPONSES,
    SECRET,
    arguments,
    json_objects,
    near_valid,
    texts,
)
from tests.contract_apis import APIS
from tests.fuzz_proxy import (
    PATHS,
    Stack,
    answered_whole,
    assert_error_shape,
    assert_no_crash,
    assert_only_texts_changed,
    post,
    running_stack,
    sdk_call,
)
from tests.fuzzing import fuzz_settings
from tests.scripted_upstream import Answer

check_request = st.fixed_dictionaries({"text": texts}, optional={
    "stage": st.sampled_from(["input", "output"]), "context": st.lists(texts, max_size=2), "chain": st.just("default"),
    "policy": st.just("fuzz")})
VALID = {**REQUESTS, "azure_chat": REQUESTS["chat"], "azure_completions": REQUESTS["completions"],
         "azure_embeddings": REQUESTS["embeddings"], "check": check_request}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("fuzz")) as running:
        yield running


# -- bodies ----------------------------------------------------------------------------------------------------

_scalars = st.none() | st.booleans() | st.integers() | st.floats() | texts | st.integers(10**18, 10**40)
random_json = st.recursive(_scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.sampled_from(["model", "messages", "input", "prompt", "content",
                                                              "role", "type", "text", "stream", "n", "system"])
                                             | st.text(max_size=6), inner, max_size=5), max_leaves=20)


def wrong_values() -> st.SearchStrategy[Any]:
    return st.one_of(_scalars, st.just([]), st.just({}), st.just([[]]), st.just([None]), st.just({"type": []}),
                     st.just({"type": {"a": 1}}), st.lists(_scalars, max_size=3),
                     st.dictionaries(st.text(max_size=4), _scalars, max_size=3), json_objects,
                     st.integers(-(2**80), 2**80), st.just(float("inf")), st.just(float("nan")))


ODD = [b"", b"null", b"[]", b'"text"', b"0", b"NaN", b"{", b"}", b"{}", b"\xef\xbb\xbf{}", b"[" * 5000,
       b'{"messages": ' + b"[" * 300 + b"]" * 300 + b"}", b'{"model": "m", "n": 1e400}',
       b'{"model": "m", "messages": [], "n": 123456789012345678901234567890}', b'{"a": 1} trailing',
       b'{"messages": [{"role": "user", "content": "\\ud800"}]}', b'{"input": "\xff\xfe"}', b'{"n": -0.0e-999}',
       b'{"model": "m", "model": 5}', b'{"prompt": "a\x00b"}', b'{"text": "' + b"\\u0000" * 10 + b'"}',
       b'{"messages": [{"role": "user", "content": "x"}], "guardproxy": {"context": ["' + b"x" * 10 + b'"]}}',
       b'{"messages": [], "guardproxy": {"context": [1]}}', b'{"messages": [], "guardproxy": []}']


def _dumped(value: Any) -> bytes:
    return json.dumps(value).encode()


def bodies(api: str) -> st.SearchStrategy[bytes]:
    valid = VALID[api]
    return st.one_of(
        random_json.map(_dumped),
        valid.map(_dumped),
        near_valid(valid, wrong_values).map(_dumped),
        st.tuples(valid.map(_dumped), st.integers(0, 200), st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\0"]))
        .map(lambda t: t[0][:t[1]] + t[2] + t[0][t[1]:]),  # a byte that breaks the UTF-8 or the JSON
        st.binary(max_size=80),
        st.sampled_from(ODD),
    )


headers = st.fixed_dictionaries({}, optional={
    "content-type": st.sampled_from(["application/json", "text/plain", "", "application/json; charset=latin-1",
                                     "multipart/form-data; boundary=x", "application/x-www-form-urlencoded"]),
    "content-encoding": st.sampled_from(["gzip", "identity", "br", "GZIP", "deflate, gzip", "x-unknown", ""]),
    "x-guardproxy-policy": st.sampled_from(["fuzz", "nope", ""]),
})


@st.composite
def requests(draw: st.DrawFn) -> tuple[str, bytes, dict[str, str]]:
    api = draw(st.sampled_from(sorted(PATHS)))
    return api, draw(bodies(api)), draw(headers)


# -- the properties -------------------------------------------------------------------------------------------

@fuzz_settings(300)
@given(requests())
def test_any_body_on_any_guarded_path_gets_no_5xx_and_errors_in_the_api_shape(
        stack: Stack, case: tuple[str, bytes, dict[str, str]]) -> None:
    api, body, sent_headers = case
    what = f"POST {PATHS[api]} {body[:300]!r} {sent_headers}"
    with answered_whole(stack, what):
        response = post(stack, api, body, sent_headers)
    assert_no_crash(stack, what, response.status_code, response.text)
    if response.status_code >= 400:
        assert_error_shape(api, response.status_code, response.json())
    else:
        assert_only_texts_changed(stack, api, body)


_methods = st.sampled_from(["GET", "PUT", "DELETE", "PATCH", "OPTIONS"])
_spellings = st.sampled_from(["{p}/", "{p}//", "{p}/x", "{p}/..", "/v1/./{q}", "/v1//{q}", "/V1/{q}", "{p}%2F",
                              "/v1/%2e%2e/{q}", "{p}?x=%ff"])


@fuzz_settings(60)
@given(st.sampled_from(sorted(PATHS)), _methods | st.just("POST"), _spellings | st.just("{p}"), bodies("chat"))
def test_other_methods_and_spellings_of_the_paths(stack: Stack, api: str, method: str, spelling: str,
                                                  body: bytes) -> None:
    path = spelling.format(p=PATHS[api], q=PATHS[api].removeprefix("/v1/"))
    response = post(stack, api, body, {}, method, path)
    assert_no_crash(stack, f"{method} {path} {body[:200]!r}", response.status_code, response.text)
    if response.status_code >= 400:
        anthropic_path = posixpath.normpath(unquote(path.partition("?")[0])).lower().startswith("/v1/messages")
        assert_error_shape("messages" if anthropic_path else "chat", response.status_code, response.json())


_ANSWERS = {"azure_chat": "chat", "count_tokens": None, "embeddings": None}
_FIXED_ANSWERS = {"count_tokens": {"input_tokens": 7},
                  "embeddings": {"object": "list", "model": "m", "usage": {"prompt_tokens": 1, "total_tokens": 1},
                                 "data": [{"object": "embedding", "index": 0, "embedding": [0.5]}]}}


@st.composite
def exchanges(draw: st.DrawFn) -> tuple[str, dict[str, Any], Any]:
    api = draw(st.sampled_from(sorted({*REQUESTS, "azure_chat"})))
    payload = draw(VALID[api])
    answered = _ANSWERS.get(api, api)
    answer = draw(RESPONSES[answered]) if answered else _FIXED_ANSWERS[api]
    return api, payload, answer


@fuzz_settings(80)
@given(exchanges())
def test_valid_requests_and_answers_through_the_sdks(stack: Stack, exchange: tuple[str, dict[str, Any], Any]) -> None:
    api, payload, answer = exchange
    stack.upstream.script(Answer(json=answer))
    what = f"{api} {payload} -> {answer}"
    try:
        with answered_whole(stack, what):
            sdk_call(stack, api, payload)
    except (openai.APIStatusError, anthropic.APIStatusError) as exc:
        assert_no_crash(stack, what, exc.status_code, exc.response.text)
        assert exc.status_code == 400 and BANNED in json.dumps(payload), what  # only a block refuses these
        assert_error_shape(api, exc.status_code, exc.response.json())
    else:
        assert_no_crash(stack, what)


_STREAMED = [api for api in APIS if api.output]


@st.composite
def streamed(draw: st.DrawFn) -> tuple[Any, str, str | None, tuple[str, str] | None]:
    api = draw(st.sampled_from(_STREAMED))
    user = draw(texts.filter(lambda t: BANNED not in t))
    call = None
    if api.name != "completions" and draw(st.booleans()):
        args = draw(json_objects.map(json.dumps) if api.name == "messages" else arguments)
        call = ("lookup", args)
    return api, user, draw(texts), call


@fuzz_settings(40)
@given(streamed())
def test_streamed_answers_through_the_sdks(stack: Stack, case: tuple[Any, str, str | None, tuple[str, str] | None]
                                           ) -> None:
    api, user, text, call = case
    stack.upstream.script(api.script(text, call, True))
    what = f"{api.name} stream of {text!r} {call}"
    with answered_whole(stack, what):
        api.call(stack.url, user, True)
    assert_no_crash(stack, what)


# -- crashes the fuzzing found, kept as regressions ---------------------------------------------------------

_ASSISTANT_CALL = {"role": "assistant", "content": None, "tool_calls": [{"id": "c", "type": "function", "function": {
    "name": "f", "arguments": json.dumps({"a": "\ud800", "b": SECRET})}}]}
REGRESSIONS = {
    # chat.py: a content part whose type is an array raised TypeError (unhashable) in extraction: 500.
    "part type an array": ("azure_chat", {"model": "m", "messages": [{"role": "system", "content": [
        {"type": [], "text": ""}]}]}),
    # json_paths.py: a tool_use input key "$json" was taken for the step into an arguments string: 500.
    "tool_use input key $json": ("messages", {"model": "m", "max_tokens": 5, "messages": [{"role": "assistant",
        "content": [{"type": "tool_use", "id": "t", "name": "f", "input": {"$json": EMAIL}}]}]}),
    # json_paths.py: redacting one value of arguments holding a "\ud800" escape wrote a raw surrogate: 500.
    "surrogate escape in arguments": ("chat", {"model": "m", "messages": [_ASSISTANT_CALL]}),
    # json_codec.py: NaN read by the standard library went back to the upstream as null once a text changed.
    "NaN kept": ("chat", b'{"model": "m", "temperature": NaN, "messages": [{"role": "user", "content": "'
                 + SECRET.encode() + b'"}]}'),
    # json_codec.py: so did a number beyond a double (1e400); it is refused now.
    "1e400 refused": ("responses", b'{"model": "m", "top_p": 1e400, "input": "' + EMAIL.encode() + b'"}'),
}


@pytest.mark.parametrize("name", sorted(REGRESSIONS))
def test_crashes_found_by_fuzzing(stack: Stack, name: str) -> None:
    api, payload = REGRESSIONS[name]
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    response = post(stack, api, body, {})
    assert_no_crash(stack, name, response.status_code, response.text)
    if response.status_code >= 400:
        assert_error_shape(api, response.status_code, response.json())
        assert name.endswith("refused"), response.text
    else:
        assert response.status_code == 200 and len(stack.upstream.received) == 1
        assert_only_texts_changed(stack, api, body)
        assert EMAIL.encode() not in stack.upstream.received[0].body
        assert SECRET.encode() not in stack.upstream.received[0].body


# -- found by fuzzing, fixed outside the files of these tests -------------------------------------------------------

def test_a_rejected_spelling_of_an_anthropic_path_gets_the_anthropic_error_shape(stack: Stack) -> None:
    response = post(stack, "messages", b"{}", {}, "POST", "/v1/messages%2F")
    assert response.status_code == 400
    assert_error_shape("messages", 400, response.json())


def test_a_key_given_twice_cannot_carry_unchecked_text_upstream(stack: Stack) -> None:
    """The guards check the last ``messages`` (what Python's and orjson's parsers keep); the bytes
    sent on hold both, and a parser that keeps the first sees the banned word."""
    body = (b'{"model": "m", "messages": [{"role": "user", "content": "' + BANNED.encode() + b'"}], '
            b'"messages": [{"role": "user", "content": "hello"}]}')
    response = post(stack, "chat", body, {})
    assert response.status_code == 400 or BANNED.encode() not in stack.upstream.bodies()
