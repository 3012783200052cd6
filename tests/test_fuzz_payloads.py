"""Finding text in payloads and writing it back, under fuzzing (``guardproxy/proxy/dialects/``).

For any valid request or answer of every guarded API (``api_payloads.py``, checked
here against the SDKs' own types):

- writing every extracted text back unchanged gives the same JSON value, byte for
  byte once serialised: tool-call ``arguments`` strings and ``tool_use.input``
  objects included;
- writing every text back changed puts each change exactly where it was found
  (extracting again gives the changed texts, at the same paths, with the same
  roles), the payload still serialises as the proxy sends it, and writing the
  originals back restores the payload (an ``arguments`` string as the same JSON value:
  a rewritten one is re-serialised, on purpose, so a redaction cannot break it).
"""

from __future__ import annotations

import collections.abc
import copy
import json
import types
import typing
from collections.abc import Callable
from typing import Annotated, Any, Literal, NotRequired, Required, Union

import pytest
from anthropic.types.message_count_tokens_params import MessageCountTokensParams
from anthropic.types.message_create_params import MessageCreateParamsNonStreaming
from hypothesis import given
from hypothesis import strategies as st
from openai.types.chat.completion_create_params import CompletionCreateParamsNonStreaming as ChatParams
from openai.types.completion_create_params import CompletionCreateParamsNonStreaming as CompletionParams
from openai.types.embedding_create_params import EmbeddingCreateParams
from openai.types.responses.response_create_params import ResponseCreateParamsNonStreaming
from pydantic import BaseModel, ValidationError
from typing_extensions import is_typeddict

from guardproxy import json_codec
from guardproxy.guards import Segment
from guardproxy.proxy.dialects import DIALECTS, Dialect, apply_texts
from guardproxy.proxy.dialects.json_paths import JSON_MARK
from tests.api_payloads import REQUESTS, RESPONSES
from tests.fuzzing import fuzz_settings
from tests.scripted_upstream import validated

DIALECT_OF = {d.name: d for d in DIALECTS.values()}
REQUEST_TYPES: dict[str, Any] = {
    "chat": ChatParams, "completions": CompletionParams, "embeddings": EmbeddingCreateParams,
    "responses": ResponseCreateParamsNonStreaming, "messages": MessageCreateParamsNonStreaming,
    "count_tokens": MessageCountTokensParams,
}
_TEXT_CHARS = st.characters(exclude_categories=["Cs"])
MARK = "\u2063~"  # ends in a character no JSON text ends in: a marked text that was not JSON stays not JSON


def mismatch(value: Any, expected: Any, where: str = "$") -> str | None:
    """Where ``value`` departs from an SDK request type, or None. Written out because the SDKs
    declare arrays ``Iterable``, which pydantic checks lazily and, inside unions, wrongly; extra
    keys of a TypedDict pass, as the SDKs send them (``extra_body``)."""
    origin, args = typing.get_origin(expected), typing.get_args(expected)
    if expected in (Any, object):
        return None
    if origin in (Required, NotRequired, Annotated):
        return mismatch(value, args[0], where)
    if origin in (Union, types.UnionType):
        found = [mismatch(value, option, where) for option in args]
        return None if None in found else min((f for f in found if f), key=len)
    if origin is Literal:
        return None if any(value == a and type(value) is type(a) for a in args) else f"{where}: not one of {args}"
    if is_typeddict(expected):
        return _typeddict_mismatch(value, expected, where)
    if origin in (list, collections.abc.Iterable, collections.abc.Sequence):
        if not isinstance(value, list):
            return f"{where}: not an array"
        return next((m for i, item in enumerate(value) if (m := mismatch(item, args[0], f"{where}[{i}]"))), None)
    if origin is dict:
        if not isinstance(value, dict):
            return f"{where}: not an object"
        return next((m for k, item in value.items() if (m := mismatch(item, args[1], f"{where}.{k}"))), None)
    if expected is type(None):
        return None if value is None else f"{where}: not null"
    if expected in (str, bool):
        return None if type(value) is expected else f"{where}: not {expected.__name__}"
    if expected in (int, float):
        numeric = (int,) if expected is int else (int, float)
        return None if isinstance(value, numeric) and not isinstance(value, bool) else f"{where}: not a number"
    if isinstance(expected, type) and issubclass(expected, BaseModel):  # a response model, accepted as a param
        try:
            expected.model_validate(value)
        except ValidationError as exc:
            return f"{where}: {exc.errors()[0]['msg']}"
        return None
    return f"{where}: not checked against {expected!r}, so not taken"


def _typeddict_mismatch(value: Any, expected: Any, where: str) -> str | None:
    if not isinstance(value, dict):
        return f"{where}: not an object ({expected.__name__})"
    hints = typing.get_type_hints(expected, include_extras=True)
    for key, hint in hints.items():
        required = typing.get_origin(hint) is Required or (
            expected.__total__ and typing.get_origin(hint) is not NotRequired)
        if key not in value:
            if required:
                return f"{where}: {expected.__name__} needs {key!r}"
        elif found := mismatch(value[key], hint, f"{where}.{key}"):
            return found
    return None


def _arguments_as_json(payload: Any, segments: list[Segment]) -> Any:
    """``payload`` with each JSON arguments string a segment came from replaced by its value."""
    out = copy.deepcopy(payload)
    for path in {s.path[:s.path.index(JSON_MARK)] for s in segments if JSON_MARK in s.path}:
        holder = out
        for part in path[:-1]:
            holder = holder[part]
        if isinstance(holder[path[-1]], str):
            holder[path[-1]] = {"$parsed": json.loads(holder[path[-1]])}
    return out


def exact(value: Any) -> str:
    """A JSON value's text, telling ``1``, ``1.0`` and ``true`` apart and keeping key order."""
    return json.dumps(value, ensure_ascii=False)


def check_round_trip(payload: dict[str, Any], segments_of: Callable[[dict[str, Any]], list[Segment]]) -> None:
    original = copy.deepcopy(payload)
    segments = segments_of(payload)

    apply_texts(payload, [(s, s.text) for s in segments])
    assert exact(payload) == exact(original)

    apply_texts(payload, [(s, s.text + MARK) for s in segments])
    marked = segments_of(payload)
    assert [(s.path, s.role) for s in marked] == [(s.path, s.role) for s in segments]
    assert [s.text for s in marked] == [s.text + MARK for s in segments]
    assert json_codec.loads(json_codec.dumps(payload)) == payload  # what the proxy sends can be sent

    apply_texts(payload, [(m, s.text) for m, s in zip(marked, segments, strict=True)])
    assert exact(_arguments_as_json(payload, segments)) == exact(_arguments_as_json(original, segments))
    assert segments_of(payload) == segments


@pytest.mark.parametrize("api", sorted(REQUESTS))
@fuzz_settings(40)
@given(data=st.data())
def test_generated_requests_follow_the_sdk_types(api: str, data: st.DataObject) -> None:
    payload = data.draw(REQUESTS[api])
    assert mismatch(payload, REQUEST_TYPES[api]) is None
    DIALECT_OF[api].check_request(payload)  # and the proxy takes them as they are


@pytest.mark.parametrize("api", sorted(RESPONSES))
@fuzz_settings(40)
@given(data=st.data())
def test_generated_answers_follow_the_sdk_types(api: str, data: st.DataObject) -> None:
    validated(data.draw(RESPONSES[api]))


@pytest.mark.parametrize("api", sorted(REQUESTS))
@fuzz_settings(100)
@given(data=st.data())
def test_request_texts_written_back_give_the_same_payload(api: str, data: st.DataObject) -> None:
    dialect: Dialect = DIALECT_OF[api]
    check_round_trip(data.draw(REQUESTS[api]), dialect.request_segments)


@pytest.mark.parametrize("api", sorted(RESPONSES))
@fuzz_settings(100)
@given(data=st.data())
def test_answer_texts_written_back_give_the_same_payload(api: str, data: st.DataObject) -> None:
    dialect: Dialect = DIALECT_OF[api]
    check_round_trip(data.draw(RESPONSES[api]), dialect.response_segments)


# Regressions found by the properties above (fixed in ``json_paths.apply_texts``).

def test_texts_written_back_unchanged_keep_an_arguments_string_as_written() -> None:
    """Compact arguments, as models write them, came back re-spaced: ``{"a": "x"}``."""
    payload = {"model": "m", "messages": [{"role": "assistant", "tool_calls": [
        {"id": "c", "type": "function", "function": {"name": "f", "arguments": '{"a":"x","n":1.0}'}}]}]}
    segments = DIALECT_OF["chat"].request_segments(payload)
    apply_texts(payload, [(s, s.text) for s in segments])
    assert payload["messages"][0]["tool_calls"][0]["function"]["arguments"] == '{"a":"x","n":1.0}'


def test_a_tool_use_input_key_spelled_like_the_arguments_step() -> None:
    """A ``tool_use`` input key ``$json`` was taken for the step into an arguments string:
    the rewrite raised TypeError (a 500 on /v1/messages when a guard redacted its value)."""
    payload = {"model": "m", "max_tokens": 5, "messages": [{"role": "assistant", "content": [
        {"type": "tool_use", "id": "t", "name": "f", "input": {"$json": {"to": "a@example.org"}}}]}]}
    segments = DIALECT_OF["messages"].request_segments(payload)
    apply_texts(payload, [(segments[0], "<EMAIL>")])
    assert payload["messages"][0]["content"][0]["input"] == {"$json": {"to": "<EMAIL>"}}


def test_a_lone_surrogate_escape_in_arguments_survives_a_rewrite() -> None:
    """``"\\ud800"`` inside an arguments string is a valid request; rewriting another value of
    it wrote the surrogate out raw, which no JSON encoder can send (a 500 on the request path)."""
    payload = {"choices": [{"index": 0, "message": {"role": "assistant", "content": None, "tool_calls": [
        {"id": "c", "type": "function", "function": {"name": "f", "arguments": '{"a": "\\ud800", "b": "secret"}'}}]},
        "finish_reason": "tool_calls", "logprobs": None}]}
    segments = DIALECT_OF["chat"].response_segments(payload)
    apply_texts(payload, [(s, "[X]") for s in segments if s.text == "secret"])
    arguments = payload["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"]
    assert json.loads(arguments) == {"a": "\ud800", "b": "[X]"} and "\\ud800" in arguments
    assert json_codec.loads(json_codec.dumps(payload)) == payload


_any_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**100), 2**100) | st.floats() | st.text(_TEXT_CHARS),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(_TEXT_CHARS, max_size=4), inner, max_size=3),
    max_leaves=10)


@fuzz_settings(150)
@given(_any_json, st.sampled_from([{}, {"ensure_ascii": False}, {"separators": (",", ":")}, {"indent": 1}]))
def test_the_codec_writes_back_what_it_read(value: Any, style: dict[str, Any]) -> None:
    """``json_codec`` reads a body and, when a text changed, writes it back: nothing else may
    change on the way (NaN, Infinity, integers past 64 bits, escapes, any spacing)."""
    body = json.dumps(value, **style).encode()
    assert exact(json.loads(json_codec.dumps(json_codec.loads(body)))) == exact(json.loads(body))


def test_a_number_beyond_a_double_is_refused() -> None:
    """Regression: read as infinity, it went back to the upstream as ``null``."""
    with pytest.raises(ValueError, match="double"):
        json_codec.loads(b'{"top_p": 1e400, "n": 12345678901234567890}')
