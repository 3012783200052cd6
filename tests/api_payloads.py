"""Hypothesis strategies for valid payloads of every guarded API, for the fuzz tests.

Requests and answers of chat completions, text completions, embeddings, the
Responses API and Anthropic Messages (and count_tokens), shaped after the SDK
types in the venv (``openai.types.chat``, ``openai.types.responses``,
``anthropic.types``); ``test_fuzz_payloads.py`` checks every generated request
against the SDK's request TypedDicts and every answer against its models.

Texts mix random Unicode with what the guards and the proxy's own paths react
to (an e-mail, a secret, a banned word, JSON-looking text, the ``$json`` path
step as a key); tool-call arguments are JSON written the ways clients and models
write it (the SDK's ``json.dumps``, compact, non-ASCII as itself, a lone
surrogate as an escape), plain text that is not JSON, or empty.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from hypothesis import strategies as st

from tests.scripted_upstream import chat_answer, messages_answer, responses_answer

Strategy = st.SearchStrategy

EMAIL = "maria.gonzalez@example.org"
SECRET = "sk-abcdefghijklmnopqrstuvwx"
BANNED = "zanzibar"
_SNIPPETS = [EMAIL, f"mail {EMAIL} now", SECRET, f"key={SECRET}", BANNED, "", " ", "a", '{"a": 1}', "[1, 2]",
             '"quoted"', "null", "7", "é日本😀", "\u2028", "\x00", "line\nbreak", "$json", "\\ud800", "tab\there"]
_CHARS = st.characters(exclude_categories=["Cs"])
texts: Strategy[str] = st.one_of(
    st.text(_CHARS, max_size=24),
    st.sampled_from(_SNIPPETS),
    st.lists(st.sampled_from(_SNIPPETS[:8]) | st.text(_CHARS, max_size=6), min_size=2, max_size=4).map(" ".join),
)
names = st.sampled_from(["get_weather", "lookup", "f", "send_mail"])
ids = st.sampled_from(["call_1", "call_2", "toolu_1", "fc_1"])
keys = st.one_of(st.text(_CHARS, max_size=8), st.sampled_from(["$json", "text", "content", "input", "arguments", ""]))
_numbers = st.one_of(st.integers(-(2**70), 2**70), st.floats(allow_nan=False, allow_infinity=False))


def json_values(strings: Strategy[str] = texts) -> Strategy[Any]:
    return st.recursive(st.none() | st.booleans() | _numbers | strings,
                        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=3),
                        max_leaves=8)


json_objects = st.dictionaries(keys, json_values(), max_size=4)
_lone_surrogates = st.text(st.characters(categories=["Cs"]), min_size=1, max_size=2)
arguments: Strategy[str] = st.one_of(
    json_objects.map(json.dumps),  # the SDK's serialisation
    json_objects.map(lambda v: json.dumps(v, separators=(",", ":"), ensure_ascii=False)),  # as models write it
    json_values().map(lambda v: json.dumps(v, ensure_ascii=False)),  # any JSON value, a bare string too
    st.dictionaries(keys, _lone_surrogates | texts, min_size=1, max_size=3).map(json.dumps),  # "\\ud800" escapes
    texts,  # not JSON at all (or by chance JSON)
)


def _fixed(required: dict[str, Any], optional: dict[str, Any] | None = None) -> Strategy[dict[str, Any]]:
    """``st.fixed_dictionaries`` where plain values stand for themselves."""
    def strategy(value: Any) -> Strategy[Any]:
        return value if isinstance(value, st.SearchStrategy) else st.just(value)
    return st.fixed_dictionaries({k: strategy(v) for k, v in required.items()},
                                 optional={k: strategy(v) for k, v in (optional or {}).items()})


def _few(strategy: Strategy[Any], min_size: int = 0) -> Strategy[list[Any]]:
    return st.lists(strategy, min_size=min_size, max_size=3)


# -- chat completions (openai.types.chat) ------------------------------------------------------------------

chat_text_part = _fixed({"type": "text", "text": texts})
chat_refusal_part = _fixed({"type": "refusal", "refusal": texts})
chat_image_part = _fixed({"type": "image_url", "image_url": _fixed({"url": "https://example.org/cat.png"},
                                                                   {"detail": st.sampled_from(["auto", "low"])})})
chat_audio_part = _fixed({"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}})
chat_file_part = _fixed({"type": "file", "file": {"file_id": "file-1"}})
function_call = _fixed({"name": names, "arguments": arguments})
chat_tool_call = st.one_of(
    _fixed({"id": ids, "type": "function", "function": function_call}),
    _fixed({"id": ids, "type": "custom", "custom": _fixed({"name": names, "input": texts})}),
)
_plain_or_text_parts = texts | _few(chat_text_part)
chat_message = st.one_of(
    _fixed({"role": st.sampled_from(["system", "developer"]), "content": _plain_or_text_parts}, {"name": names}),
    _fixed({"role": "user", "content": texts | _few(st.one_of(chat_text_part, chat_image_part, chat_audio_part,
                                                               chat_file_part))}, {"name": names}),
    _fixed({"role": "assistant"}, {
        "content": st.none() | texts | _few(chat_text_part | chat_refusal_part),
        "refusal": st.none() | texts,
        "tool_calls": _few(chat_tool_call),
        "function_call": st.none() | function_call,
        "reasoning_content": texts,  # not in the SDK's types: the field reasoning models' servers add
        "name": names,
    }),
    _fixed({"role": "tool", "tool_call_id": ids, "content": _plain_or_text_parts}),
    _fixed({"role": "function", "name": names, "content": st.none() | texts}),
)
chat_request = _fixed({"model": "m", "messages": _few(chat_message, min_size=1)},
                      {"n": st.integers(1, 3), "temperature": st.floats(0, 2), "user": texts})

chat_answer_message = _fixed({"content": st.none() | texts, "refusal": st.none() | texts}, {
    "tool_calls": _few(chat_tool_call, min_size=1),
    "function_call": function_call,
    "reasoning_content": texts,
    "annotations": st.just([]),
})
chat_response = st.tuples(_few(chat_answer_message, min_size=1),
                          st.sampled_from(["stop", "length", "tool_calls", "content_filter", "function_call"])
                          ).map(lambda t: chat_answer(*t[0], finish=t[1]))


# -- text completions and embeddings (openai.types) ---------------------------------------------------------

_token_ids = st.lists(st.integers(0, 50_000), max_size=4)
_prompts = st.one_of(texts, _few(texts, min_size=1), _token_ids, _few(_token_ids, min_size=1))
completions_request = _fixed({"model": "m", "prompt": _prompts}, {"max_tokens": st.integers(1, 64), "echo": False})
completions_response = _few(texts, min_size=1).map(lambda answers: {
    "id": "cmpl-1", "object": "text_completion", "created": 1, "model": "m",
    "choices": [{"index": i, "text": text, "finish_reason": "stop", "logprobs": None}
                for i, text in enumerate(answers)]})
embeddings_request = _fixed({"model": "m", "input": _prompts}, {"encoding_format": "float"})


# -- the Responses API (openai.types.responses) -------------------------------------------------------------

input_text = _fixed({"type": "input_text", "text": texts})
input_image = _fixed({"type": "input_image", "detail": "auto", "image_url": "https://example.org/cat.png"})
output_text = _fixed({"type": "output_text", "text": texts, "annotations": []}, {"logprobs": st.just([])})
output_refusal = _fixed({"type": "refusal", "refusal": texts})
responses_function_call = _fixed({"type": "function_call", "call_id": ids, "name": names, "arguments": arguments},
                                 {"id": "fc_1", "status": "completed"})
reasoning_item = _fixed({"type": "reasoning", "id": "rs_1",
                         "summary": _few(_fixed({"type": "summary_text", "text": texts}))})
responses_input_item = st.one_of(
    _fixed({"role": st.sampled_from(["user", "assistant", "system", "developer"]),
            "content": texts | _few(input_text | input_image)}, {"type": "message"}),
    _fixed({"type": "message", "role": st.sampled_from(["user", "system", "developer"]),
            "content": _few(input_text | input_image)}, {"status": "completed"}),
    _fixed({"id": "msg_1", "type": "message", "role": "assistant", "status": "completed",
            "content": _few(output_text | output_refusal)}),
    responses_function_call,
    _fixed({"type": "function_call_output", "call_id": ids, "output": texts | _few(input_text | input_image)}),
    reasoning_item,
)
responses_request = _fixed({"model": "m", "input": texts | _few(responses_input_item)},
                           {"instructions": st.none() | texts, "store": st.booleans()})
responses_output_item = st.one_of(
    _fixed({"id": "msg_1", "type": "message", "role": "assistant", "status": "completed",
            "content": _few(output_text | output_refusal)}),
    _fixed({"type": "function_call", "id": "fc_1", "call_id": ids, "name": names, "arguments": arguments,
            "status": "completed"}),
    reasoning_item,
)
responses_response = _few(responses_output_item).map(lambda output: {**responses_answer(""), "output": output})


# -- Anthropic Messages (anthropic.types) -------------------------------------------------------------------

text_block = _fixed({"type": "text", "text": texts}, {"cache_control": {"type": "ephemeral"}})
image_block = _fixed({"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                                   "data": "iVBORw0KGgo="}})
tool_use_block = _fixed({"type": "tool_use", "id": ids, "name": names, "input": json_objects})
tool_result_block = _fixed({"type": "tool_result", "tool_use_id": ids},
                           {"content": texts | _few(text_block | image_block), "is_error": st.booleans()})
thinking_block = _fixed({"type": "thinking", "thinking": texts, "signature": "c2lnbmF0dXJl"})
anthropic_message = st.one_of(
    _fixed({"role": "user", "content": texts | _few(st.one_of(text_block, image_block, tool_result_block))}),
    _fixed({"role": "assistant", "content": texts | _few(st.one_of(text_block, tool_use_block, thinking_block))}),
)
_messages_fields = {"model": "claude-test", "messages": _few(anthropic_message, min_size=1)}
_system = {"system": texts | _few(text_block)}
messages_request = _fixed({**_messages_fields, "max_tokens": st.integers(1, 1024)}, _system)
count_tokens_request = _fixed(_messages_fields, _system)
messages_response = _few(st.one_of(
    _fixed({"type": "text", "text": texts, "citations": None}),
    _fixed({"type": "tool_use", "id": ids, "name": names, "input": json_objects}),
    _fixed({"type": "thinking", "thinking": texts, "signature": "c2lnbmF0dXJl"}),
)).map(lambda content: {**messages_answer(""), "content": content})


REQUESTS: dict[str, Strategy[dict[str, Any]]] = {
    "chat": chat_request, "completions": completions_request, "embeddings": embeddings_request,
    "responses": responses_request, "messages": messages_request, "count_tokens": count_tokens_request,
}
RESPONSES: dict[str, Strategy[dict[str, Any]]] = {
    "chat": chat_response, "completions": completions_response, "responses": responses_response,
    "messages": messages_response,
}


def paths_in(payload: Any) -> list[tuple[Any, ...]]:
    """Every path into ``payload`` (objects and arrays), for replacing what one holds."""
    paths: list[tuple[Any, ...]] = [()]
    items = payload.items() if isinstance(payload, dict) else enumerate(payload) if isinstance(payload, list) else ()
    for key, value in items:
        paths.extend((key, *rest) for rest in paths_in(value))
    return paths


def replaced(payload: Any, path: tuple[Any, ...], value: Any) -> Any:
    """A copy of ``payload`` with ``value`` at ``path`` (the root itself for ``()``)."""
    if not path:
        return value
    copy: Any = dict(payload) if isinstance(payload, dict) else list(payload)
    copy[path[0]] = replaced(copy[path[0]], path[1:], value)
    return copy


@st.composite
def near_valid(draw: st.DrawFn, valid: Strategy[dict[str, Any]], wrong: Callable[[], Strategy[Any]]) -> Any:
    """A valid payload with a value of the wrong type somewhere (any field, at any depth)."""
    payload = draw(valid)
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(paths_in(payload)))
        payload = replaced(payload, path, draw(wrong()))
    return payload
