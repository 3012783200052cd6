"""``guardproxy/proxy/stream_end.py``: whether a stream relayed unread ended with its API's
end event, from its bytes however they are split into reads.

The streams are the real APIs' (the scripted upstream's builders, validated against the
SDK types), with LF, CRLF or CR line ends, text that quotes ``data: [DONE]`` and
``event: message_stop`` inside JSON strings, and comments after the end. A stream is
complete exactly when every byte of its end event, blank line included, has arrived.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from guardproxy.proxy.stream_end import StreamEnd, ends_event
from tests.fuzzing import fuzz_settings
from tests.scripted_upstream import chat_chunk, messages_events, responses_events

TRICKY = ["Say ", "data: [DONE]", " or\nevent: message_stop", " then event: response.completed", " and stop."]
LINE_ENDS = {"lf": "\n", "crlf": "\r\n", "cr": "\r"}


def encode(events: list[Any], line_end: str, typed: bool) -> bytes:
    out = ""
    for event in events:
        data = event if isinstance(event, str) else json.dumps(event)
        name = f"event: {event['type']}{line_end}" if typed and isinstance(event, dict) else ""
        out += f"{name}data: {data}{line_end}{line_end}"
    return out.encode()


STREAMS: dict[str, tuple[list[Any], bool]] = {
    "choices": ([*(chat_chunk(content=p) for p in TRICKY), chat_chunk(finish="stop"), "[DONE]"], False),
    "responses": (responses_events(TRICKY), True),
    "messages": (messages_events(TRICKY), True),
}


def feed(family: str, data: bytes, cuts: list[int]) -> bool:
    end = StreamEnd(family)
    bounds = [0, *sorted({c for c in cuts if 0 < c < len(data)}), len(data)]
    for start, stop in itertools.pairwise(bounds):
        end.feed(data[start:stop])
    return end.complete


families = st.sampled_from(sorted(STREAMS))
line_ends = st.sampled_from(sorted(LINE_ENDS))
cuts = st.lists(st.integers(min_value=0, max_value=20_000), max_size=12)


@fuzz_settings(300)
@given(families, line_ends, cuts, st.booleans())
def test_a_whole_stream_is_complete_however_it_is_split(family: str, line_end: str, split: list[int],
                                                        comment: bool) -> None:
    events, typed = STREAMS[family]
    data = encode(events, LINE_ENDS[line_end], typed)
    if comment:  # a keep-alive after the end changes nothing
        data += f": keep-alive{LINE_ENDS[line_end]}{LINE_ENDS[line_end]}".encode()
    assert feed(family, data, split)


@fuzz_settings(300)
@given(families, line_ends, cuts, st.data())
def test_a_stream_cut_anywhere_before_its_end_event_is_whole_is_incomplete(
        family: str, line_end: str, split: list[int], data: st.DataObject) -> None:
    events, typed = STREAMS[family]
    whole = encode(events, LINE_ENDS[line_end], typed)
    # CRLF CR already ends the blank line (a lone CR is a line end), so the last LF is not needed.
    needed = len(whole) - (1 if line_end == "crlf" else 0)
    kept = data.draw(st.integers(min_value=0, max_value=needed - 1))
    assert not feed(family, whole[:kept], split)


@fuzz_settings(100)
@given(line_ends, cuts)
def test_the_upstreams_error_event_ends_a_stream(line_end: str, split: list[int]) -> None:
    ends = LINE_ENDS[line_end]
    chat = encode([chat_chunk(content="Hi"), {"error": {"message": "Overloaded.", "type": "server_error"}}],
                  ends, typed=False)
    assert feed("choices", chat, split)
    anthropic_error = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded."}}
    assert feed("messages", encode([*messages_events(["Hi"])[:4], anthropic_error], ends, typed=True), split)


def test_a_typed_stream_without_event_lines_is_not_judged() -> None:
    assert feed("responses", encode(responses_events(["Hi"])[:-1], "\n", typed=False), [])
    for family in STREAMS:  # a stream with no event at all is judged, and incomplete
        assert not feed(family, b"", []) and not feed(family, b": keep-alive\n\n", [])


def test_text_that_quotes_an_end_is_not_one() -> None:
    for family in ("choices", "messages"):
        events, typed = STREAMS[family]
        cut = next(i for i, e in enumerate(events)
                   if isinstance(e, dict) and ("message_stop" in json.dumps(e) or "[DONE]" in json.dumps(e)))
        assert not feed(family, encode(events[: cut + 1], "\n", typed), [])


def test_ends_event_reads_mixed_line_ends() -> None:
    for tail in (b"x\n\n", b"x\r\r", b"x\r\n\r\n", b"x\n\r\n", b"x\r\n\r", b"x\n\r"):
        assert ends_event(tail), tail
    for tail in (b"x\n", b"x\r\n", b"x\r", b"x", b""):
        assert not ends_event(tail), tail
