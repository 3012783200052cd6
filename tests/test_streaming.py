"""SSE decoding, byte-exact for events the proxy does not change."""

from __future__ import annotations

from guardproxy.proxy.sse import SSEDecoder, parse_event


def test_events_split_across_arbitrary_chunks() -> None:
    stream = b'data: {"a": 1}\n\n: comment\n\ndata: [DONE]\n\n'
    for size in (1, 2, 5, 100):
        decoder = SSEDecoder()
        events = [e for i in range(0, len(stream), size) for e in decoder.feed(stream[i:i + size])]
        assert [e.data for e in events] == ['{"a": 1}', None, "[DONE]"]
        assert b"".join(e.raw for e in events) == stream


def test_crlf_multiline_and_event_names() -> None:
    event = parse_event(b"event: error\r\ndata: line one\r\ndata:line two\r\n\r\n")
    assert (event.event, event.data) == ("error", "line one\nline two")
    decoder = SSEDecoder()
    assert [e.data for e in decoder.feed(b"data: x\r\n\r\ndata: y\r\rdata: z")] == ["x", "y"]
    assert [e.data for e in decoder.close()] == ["z"]


def test_json_helper() -> None:
    assert parse_event(b'data: {"k": [1]}\n\n').json() == {"k": [1]}
    assert parse_event(b"data: [DONE]\n\n").json() is None


def test_oversized_event_is_refused() -> None:
    decoder = SSEDecoder(max_event_bytes=10)
    try:
        list(decoder.feed(b"data: " + b"x" * 20))
    except ValueError:
        return
    raise AssertionError("an oversized event must raise")
