"""What the metrics read from the bytes that leave: first content of a stream, and usage."""

from __future__ import annotations

import json

from guardproxy.proxy.dialects import DIALECTS
from guardproxy.proxy.response_watch import ResponseWatch

SSE = [(b"content-type", b"text/event-stream")]


def event(delta: dict[str, object], finish: str | None = None) -> bytes:
    chunk = {"object": "chat.completion.chunk", "model": "m",
             "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    return b"data: " + json.dumps(chunk).encode() + b"\n\n"


def watching(path: str = "/v1/chat/completions") -> ResponseWatch:
    watch = ResponseWatch(DIALECTS[path])
    watch.start(SSE)
    return watch


def test_the_role_event_and_empty_content_are_not_content() -> None:
    watch = watching()
    watch.body(event({"role": "assistant", "content": ""}))
    watch.body(event({"content": None}))
    assert watch.first_content is None
    watch.body(event({"content": "Hi"}))
    assert watch.first_content is not None


def test_a_key_split_between_chunks_is_found() -> None:
    watch = watching()
    data = event({"content": "Hello"})
    cut = data.index(b'"content"') + 4
    watch.body(data[:cut])
    assert watch.first_content is None
    watch.body(data[cut:])
    assert watch.first_content is not None


def test_text_that_quotes_a_content_key_is_not_mistaken_for_one() -> None:
    watch = watching()
    watch.body(event({"role": "assistant", "content": "", "name": 'say "content": "x" and "text": "y"'}))
    assert watch.first_content is None  # inside a JSON string those quotes are escaped
    watch.body(event({"content": ""}, finish="stop"))
    assert watch.first_content is None


def test_calls_and_other_text_fields_count_as_content_as_the_dialect_says() -> None:
    tool = watching()
    tool.body(event({"tool_calls": [{"index": 0, "id": "c", "function": {"name": "f", "arguments": ""}}]}))
    assert tool.first_content is not None
    reasoning = watching()
    reasoning.body(event({"reasoning_content": "Let me think"}))
    assert reasoning.first_content is not None
    chat = watching()
    chat.body(b'data: {"object": "text_completion", "choices": [{"index": 0, "text": " Paris"}]}\n\n')
    assert chat.first_content is None  # "text" is not a chat field
    completion = watching("/v1/completions")
    completion.body(b'data: {"object": "text_completion", "choices": [{"index": 0, "text": " Paris"}]}\n\n')
    assert completion.first_content is not None


def test_usage_is_read_and_the_last_report_wins() -> None:
    watch = watching()
    watch.body(b'data: {"usage": {"prompt_tokens": 3, "completion_tokens": 1}}\n\n')
    watch.body(b'data: {"usage": {"prompt_tokens": 3, "completion_tokens": 9}}\n\n')
    assert watch.usage == {"input": 3, "output": 9}


def test_a_compressed_stream_counts_its_first_byte() -> None:
    watch = ResponseWatch(DIALECTS["/v1/chat/completions"])
    watch.start([*SSE, (b"content-encoding", b"gzip")])
    watch.body(b"\x1f\x8b...")
    assert watch.first_content is not None and watch.usage == {}


def _typed(events: list[dict[str, object]]) -> list[bytes]:
    return [f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode() for e in events]


def test_responses_and_messages_streams_report_first_content_and_usage() -> None:
    from tests.scripted_upstream import messages_events, responses_events

    for path, events in (("/v1/responses", responses_events(["Hel", "lo"])),
                         ("/v1/messages", messages_events(["Hel", "lo"]))):
        watch = watching(path)
        raw = _typed(events)
        first_delta = next(i for i, e in enumerate(events) if "delta" in e and e["type"] != "message_delta")
        for index, data in enumerate(raw):
            watch.body(data)
            assert (watch.first_content is not None) == (index >= first_delta), (path, index)
        assert watch.usage == {"input": 3, "output": 5}, path
