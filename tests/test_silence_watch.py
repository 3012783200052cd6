"""``relay.SilenceWatch``: the read timeout of unguarded streams, one sweep for all of them.
A stream that relays nothing for the timeout ends with aiohttp's own timeout error; one
that keeps relaying, or whose client is slow to take a piece, does not. (End to end, a
stalled unguarded stream ends with a timeout event: tests/test_upstream_faults.py.)"""

from __future__ import annotations

import asyncio
from typing import Any, cast

import aiohttp

from guardproxy.proxy.context import RequestContext
from guardproxy.proxy.relay import RawRelay, SilenceWatch

SILENCE = 0.4  # swept every 0.05 s


class _Content:
    """Where ``fall_silent`` leaves the error: aiohttp's StreamReader.set_exception."""

    def __init__(self) -> None:
        self.errors: list[BaseException] = []

    def set_exception(self, exc: BaseException) -> None:
        self.errors.append(exc)


class _Response:
    def __init__(self) -> None:
        self.content = _Content()


def relay() -> tuple[RawRelay, _Content]:
    response = _Response()
    made = RawRelay(cast(Any, response), True, RequestContext("chat", "POST", "/v1/chat/completions"), None,
                    SILENCE)
    return made, response.content


def test_a_silent_stream_times_out_and_the_others_do_not() -> None:
    silent, silent_content = relay()
    flowing, flowing_content = relay()
    held, held_content = relay()

    async def run() -> float:
        watch = SilenceWatch()
        started = asyncio.get_running_loop().time()
        for item in (silent, flowing, held):
            watch.add(item)
        held.sending = True  # the client is slow to take a piece for the whole time
        while not silent_content.errors and asyncio.get_running_loop().time() - started < 3:
            flowing.pieces += 1
            await asyncio.sleep(0.02)
        elapsed = asyncio.get_running_loop().time() - started
        await asyncio.sleep(SILENCE)  # the others stay watched a while longer
        for item in (flowing, held):
            watch.discard(item)
        return elapsed

    elapsed = asyncio.run(run())
    [error] = silent_content.errors
    assert isinstance(error, aiohttp.ServerTimeoutError)
    assert elapsed >= SILENCE  # never before the timeout
    assert flowing_content.errors == [] and held_content.errors == []


def test_a_discarded_stream_is_not_swept() -> None:
    ended, content = relay()

    async def run() -> None:
        watch = SilenceWatch()
        watch.add(ended)
        watch.discard(ended)
        await asyncio.sleep(SILENCE * 2)

    asyncio.run(run())
    assert content.errors == []
