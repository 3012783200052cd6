"""Server-sent event streams in the OpenAI wire format, with their outcome recorded.

Each event is `data: <compact json>\\n\\n` and the stream ends with
`data: [DONE]\\n\\n`. The recorder learns whether the client read to the end or
went away early, which is how tests check that the proxy cancels upstream work.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from typing import Any

from starlette.responses import StreamingResponse

from guardproxy.demo.recorder import DemoRecorder

DONE_EVENT = b"data: [DONE]\n\n"


def encode_event(payload: Any) -> bytes:
    return b"data: " + json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode() + b"\n\n"


def sse_response(events: Sequence[Any], recorder: DemoRecorder, chunk_delay_seconds: float) -> StreamingResponse:
    """Stream `events` then `[DONE]`, sleeping `chunk_delay_seconds` between them."""
    return StreamingResponse(
        _paced_events(events, recorder, chunk_delay_seconds),
        media_type="text/event-stream",
        headers={"cache-control": "no-cache"},
    )


async def _paced_events(
    events: Sequence[Any], recorder: DemoRecorder, chunk_delay_seconds: float
) -> AsyncIterator[bytes]:
    """Yield the encoded events; count the stream as completed or cancelled exactly once.

    A client disconnect shows up here as CancelledError (Starlette cancels the
    sending task) or GeneratorExit (the generator is closed while parked at a
    yield); both leave `finished` False and propagate unchanged.
    """
    finished = False
    try:
        for index, event in enumerate(events):
            if index:
                await asyncio.sleep(chunk_delay_seconds)
            yield encode_event(event)
        await asyncio.sleep(chunk_delay_seconds)
        yield DONE_EVENT
        finished = True
        recorder.completed_streams += 1
    finally:
        if not finished:
            recorder.cancelled_streams += 1
