"""SSE decoding under fuzzing (``guardproxy/proxy/sse.py``).

Two properties over generated event streams (data, multi-line data, ``event:``,
``id:``, ``retry:``, comments, unknown fields, lines without a colon, LF / CRLF /
CR line ends mixed within a stream, any Unicode, invalid UTF-8, a BOM, a
trailing event without its blank line):

- however the bytes are split into reads, the decoder yields the same events,
  raw bytes included (the raw bytes are what the proxy forwards unchanged);
- the events it yields carry the data and event type that an independent
  reference parser, written from the WHATWG HTML standard (9.2.6 "Interpreting
  an event stream"), dispatches for the same bytes.

The proxy only relies on ``data`` and the ``event`` name, so those are compared;
the reference parses ``id`` and ``retry`` too, as the standard does, so a stream
using them must not disturb the rest. One leniency is the proxy's own and is
modelled explicitly: at the end of the stream, an event without its final blank
line is still decoded (and so still checked), where the standard drops it.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass

from hypothesis import example, given
from hypothesis import strategies as st

from guardproxy.engine import Engine
from guardproxy.guards import GuardContext
from guardproxy.policy.loader import parse_policy
from guardproxy.proxy.dialects import DIALECTS
from guardproxy.proxy.sse import SSEDecoder, SSEEvent, encode_data, encode_event
from guardproxy.proxy.stream_guard import StreamGuard
from tests.fuzzing import fuzz_settings

BOM = b"\xef\xbb\xbf"


# -- the reference: WHATWG HTML 9.2.5 (parsing) and 9.2.6 (interpreting an event stream) --------------------

@dataclass(frozen=True)
class SpecEvent:
    type: str
    data: str
    last_event_id: str


def spec_lines(text: str) -> list[str]:
    """The lines of the stream: each ends in CRLF, a lone LF or a lone CR. An unterminated
    last line is pending data, discarded at the end of the stream."""
    lines: list[str] = []
    start = pos = 0
    while pos < len(text):
        char = text[pos]
        if char in "\r\n":
            lines.append(text[start:pos])
            pos += 2 if text[pos:pos + 2] == "\r\n" else 1
            start = pos
        else:
            pos += 1
    return lines


def spec_events(stream: bytes) -> list[SpecEvent]:
    """The events a conforming user agent dispatches for ``stream``."""
    text = stream.decode("utf-8", errors="replace")  # the UTF-8 decode algorithm: U+FFFD for bad bytes...
    text = text.removeprefix("\ufeff")  # ...and one leading BOM removed
    events: list[SpecEvent] = []
    data = event_type = last_event_id = ""
    retry: int | None = None
    for line in spec_lines(text):
        if line == "":  # dispatch the event
            if data == "":
                data = event_type = ""
                continue
            events.append(SpecEvent(event_type or "message", data.removesuffix("\n"), last_event_id))
            data = event_type = ""
            continue
        if line.startswith(":"):
            continue
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "event":
            event_type = value
        elif name == "data":
            data += value + "\n"
        elif name == "id":
            if "\0" not in value:
                last_event_id = value
        elif name == "retry" and re.fullmatch("[0-9]+", value):
            retry = int(value)
    del retry  # the reconnection time: parsed as the standard says, used by nobody here
    return events


# -- the proxy's decoder -----------------------------------------------------------------------------------

def decode(chunks: Iterable[bytes]) -> list[SSEEvent]:
    decoder = SSEDecoder()
    events = [event for chunk in chunks for event in decoder.feed(chunk)]
    return events + list(decoder.close())


def as_spec(events: list[SSEEvent]) -> list[tuple[str, str]]:
    """What the proxy relies on, in the reference's terms: events with data, and their type."""
    return [(event.event or "message", event.data) for event in events if event.data is not None]


def split(stream: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({0, *cuts, len(stream)})
    return [stream[a:b] for a, b in itertools.pairwise(points)]


# -- generated streams --------------------------------------------------------------------------------------

_EOL = st.sampled_from([b"\n", b"\r\n", b"\r"])
_SEP = st.sampled_from([b":", b": ", b":  "])
_NO_BREAKS = st.characters(exclude_characters="\r\n", exclude_categories=["Cs"])
_BAD_UTF8 = st.sampled_from([b"\xff", b"\xc3", b"\xe2\x82", b"\xf0\x9f\x98", b"\xed\xa0\x80", b"\x80\x80"])
value = st.one_of(
    st.text(_NO_BREAKS, max_size=24).map(str.encode),
    st.sampled_from(["é", "日本", "😀", "\u2028", "\x00", "\x85", ":", " x", "{\"a\": [1]}", "[DONE]"]).map(str.encode),
    st.tuples(st.text(_NO_BREAKS, max_size=6), _BAD_UTF8).map(lambda t: t[0].encode() + t[1]),
)
field_line = st.one_of(
    st.tuples(st.just(b"data"), _SEP, value).map(b"".join),
    st.just(b"data"),  # a data line without a colon: an empty value
    st.tuples(st.sampled_from([b"event", b"id", b"retry"]), _SEP, value).map(b"".join),
    st.tuples(st.just(b"retry"), _SEP, st.integers(0, 10**6).map(lambda n: str(n).encode())).map(b"".join),
    st.tuples(st.just(b":"), value).map(b"".join),  # a comment
    st.tuples(st.sampled_from([b"Data", b"data ", b" data", b"dat", b"foo", b"event"]), _SEP, value).map(b"".join),
    value,  # anything on a line of its own (an empty one too: a blank line)
)
event = st.tuples(st.lists(st.tuples(field_line, _EOL).map(b"".join), max_size=5), _EOL).map(
    lambda t: b"".join(t[0]) + t[1])
tail = st.one_of(st.just(b""), st.lists(st.tuples(field_line, _EOL).map(b"".join), max_size=3).map(b"".join),
                 field_line)


@st.composite
def streams(draw: st.DrawFn) -> bytes:
    bom = draw(st.sampled_from([b"", b"", b"", BOM]))
    return bom + b"".join(draw(st.lists(event, max_size=8))) + draw(tail)


@st.composite
def split_streams(draw: st.DrawFn) -> tuple[bytes, list[bytes]]:
    stream = draw(streams())
    cuts = draw(st.lists(st.integers(0, len(stream)), max_size=16))
    return stream, split(stream, cuts)


# -- the properties -----------------------------------------------------------------------------------------

@fuzz_settings(150)
@given(split_streams())
@example((b"data: a\n\r\ndata: b\n\n", [b"data: a\n\r", b"\ndata: b\n\n"]))  # a CRLF split after its CR
@example((b"data: a\r\r\n\n", [b"data: a\r\r", b"\n\n"]))
@example((BOM + b"data: a\n\n", [BOM[:1], BOM[1:], b"data: a\n\n"]))
@example(("data: é😀\n\n".encode(), [b"data: \xc3", b"\xa9\xf0\x9f", b"\x98\x80\n\n"]))  # characters split
def test_any_split_into_reads_decodes_like_one_read(case: tuple[bytes, list[bytes]]) -> None:
    stream, chunks = case
    whole = decode([stream])
    assert decode(chunks) == whole
    assert decode([stream[i:i + 1] for i in range(len(stream))]) == whole


@fuzz_settings(200)
@given(streams())
@example(b"data: a\n\r\ndata: b\n\n")  # found by this test: a lone LF then CRLF, one event in the proxy
@example(b"data: a\r\n\rdata: b\r\r")  # found by this test: CRLF then a lone CR
@example(b"data: a\n\rdata: b\n\n")
@example(BOM + b"data: a\n\n")
@example(b"event: x\n\ndata: y\n\n")  # an event name without data is dropped, not carried over
@example(b"data\ndata:\ndata:  two\n\n")
def test_decoded_events_match_the_standard(stream: bytes) -> None:
    # The proxy's leniency at the end: a last event without its blank line is decoded as if it had one.
    assert as_spec(decode([stream])) == [(e.type, e.data) for e in spec_events(stream + b"\n\n")]


@fuzz_settings(100)
@given(split_streams())
def test_raw_bytes_are_the_stream_itself(case: tuple[bytes, list[bytes]]) -> None:
    """Every byte of an event goes out as it came, once and in order: the events fed cover
    the stream up to what ``close`` decodes, where an unfinished event gets a blank line
    added; only a tail of whitespace is dropped."""
    stream, chunks = case
    decoder = SSEDecoder()
    fed = b"".join(e.raw for chunk in chunks for e in decoder.feed(chunk))
    assert stream.startswith(fed)
    rest = stream[len(fed):]
    closed = b"".join(e.raw for e in decoder.close())
    assert closed in (rest, rest + b"\n\n") if closed else not rest.strip()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12)


@fuzz_settings(100)
@given(json_values, st.text(st.characters(exclude_characters="\r\n", exclude_categories=["Cs"]), max_size=20),
       st.lists(st.integers(0, 200), max_size=6))
def test_written_events_read_back(payload: object, name: str, cuts: list[int]) -> None:
    """What the proxy writes (its own events, rewritten ones) decodes to what it meant, in any reads."""
    stream = encode_data(payload) + encode_event(name, payload)
    events = decode(split(stream, [c for c in cuts if c <= len(stream)]))
    assert [e.json() for e in events] == [payload, payload]
    assert [e.event for e in events] == [None, name]
    assert json.loads(events[0].data or "") == payload


def test_mixed_line_ends_end_events_where_the_standard_does() -> None:
    """Regression (found by the fuzzer): ``\\n`` then ``\\r\\n`` is a line end and a blank line, so
    two events; the decoder merged them into one whose data, not being JSON, the stream
    guards forwarded unchecked while the openai SDK's line decoder read two events."""
    assert [e.data for e in decode([b'data: {"a": 1}\n\r\ndata: {"b": 2}\n\n'])] == ['{"a": 1}', '{"b": 2}']
    assert [e.data for e in decode([b"data: a\r\n\rdata: b\r\r"])] == ["a", "b"]
    assert [e.raw for e in decode([b"data: a\n\r\ndata: b\n\n"])] == [b"data: a\n\r\n", b"data: b\n\n"]


def test_a_leading_bom_is_not_part_of_the_first_field() -> None:
    assert [(e.data, e.raw) for e in decode([BOM + b"data: a\n\n", b"data: b\n\n"])] == [
        ("a", BOM + b"data: a\n\n"), ("b", b"data: b\n\n")]
    assert [e.data for e in decode([b"data: a\n\n" + BOM + b"data: b\n\n"])] == ["a", None]  # only at the start


def _chunk(content: str) -> str:
    return json.dumps({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
                       "choices": [{"index": 0, "delta": {"content": content}, "logprobs": None,
                                    "finish_reason": None}]})


async def _guarded(stream: bytes) -> bytes:
    policy = parse_policy("""
version: 1
name: p
chains:
  default:
    output: [{guard: keywords, action: block, terms: [zanzibar]}]
""", "p")
    engine = Engine(1)
    guard = StreamGuard(engine, policy, policy.chains["default"].output, GuardContext("output"),
                        DIALECTS["/v1/chat/completions"])
    try:
        out = b"".join([await guard.process(event) for event in decode([stream])])
        return out + await guard.finish()
    finally:
        engine.close()


def test_a_stream_with_mixed_line_ends_is_still_guarded() -> None:
    """The consequence of the merge above: a banned word after ``\n\r\n`` left unchecked."""
    stream = f"data: {_chunk('hello ')}\n\r\ndata: {_chunk('zanzibar')}\n\n".encode()
    assert b"zanzibar" not in asyncio.run(_guarded(stream))
