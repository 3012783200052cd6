"""Server-sent event streams in the OpenAI and Anthropic wire formats, with their outcome recorded.

Chat and legacy completions send `data: <compact json>\\n\\n` per chunk and end
with `data: [DONE]\\n\\n`. The Responses and Messages APIs name every event
instead (`event: <type>` before its `data:` line, the type copied from the
payload) and simply stop after their last event. The recorder learns whether
the client read to the end or went away early, which is how tests check that
the proxy cancels upstream work.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from typing import Any

from starlette.responses import StreamingResponse

from guardproxy.demo.recorder import DemoRecorder

DONE_EVENT = b"data: [DONE]\n\n"


def encode_event(payload: Any, *, named: bool = False) -> bytes:
    """One SSE event; with `named`, preceded by `event: <payload["type"]>`."""
    data = b"data: " + json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode() + b"\n\n"
    if named:
        return f"event: {payload['type']}\n".encode() + data
    return data


def sse_response(
    events: Sequence[Any],
    recorder: DemoRecorder,
    chunk_delay_seconds: float,
    *,
    typed_events: bool = False,
) -> StreamingResponse:
    """Stream `events`, sleeping `chunk_delay_seconds` between them.

    By default (chat, completions) each event is a bare `data:` line and `[DONE]`
    follows the last one; with `typed_events` (Responses, Messages) each event
    gets its `event:` line and nothing follows the last one.
    """
    return StreamingResponse(
        _paced_events(events, recorder, chunk_delay_seconds, typed_events),
        media_type="text/event-stream",
        headers={"cache-control": "no-cache"},
    )


async def _paced_events(
    events: Sequence[Any], recorder: DemoRecorder, chunk_delay_seconds: float, typed_events: bool
) -> AsyncIterator[bytes]:
    """Yield the encoded events; count the stream as completed or cancelled exactly once.

    A stream is completed once its final event (`[DONE]`, or the last typed
    event) was handed to the server. A client disconnect shows up here as
    CancelledError (Starlette cancels the sending task) or GeneratorExit (the
    generator is closed while parked at a yield); both leave `finished` False
    and propagate unchanged.
    """
    finished = False
    try:
        for index, event in enumerate(events):
            if index:
                await asyncio.sleep(chunk_delay_seconds)
            yield encode_event(event, named=typed_events)
        if not typed_events:
            await asyncio.sleep(chunk_delay_seconds)
            yield DONE_EVENT
        finished = True
        recorder.completed_streams += 1
    finally:
        if not finished:
            recorder.cancelled_streams += 1
