"""What the demo upstream saw, so tests can assert on what the proxy forwarded.

The recorder is written only from the server's event loop and read from test
threads; list appends and integer reads are atomic under the GIL, so no lock
is needed for that one-writer pattern.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class RecordedRequest:
    """One request exactly as it reached the demo upstream.

    `headers` has lower-cased names (repeated headers joined with ", ");
    `json` is the parsed body, or None when the body was empty or not JSON.
    """

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    json: Any


@dataclass
class DemoRecorder:
    """Every request the demo upstream received, plus how its streams ended.

    A stream counts as completed once its last event (`data: [DONE]` for chat)
    was handed to the server, and as cancelled when it stopped before that
    (client disconnect).
    """

    requests: list[RecordedRequest] = field(default_factory=list)
    cancelled_streams: int = 0
    completed_streams: int = 0

    def record(self, request: RecordedRequest) -> None:
        self.requests.append(request)

    def last(self) -> RecordedRequest:
        """The most recent request; raises LookupError when nothing was recorded."""
        if not self.requests:
            raise LookupError("the demo upstream has not received any request yet")
        return self.requests[-1]

    def clear(self) -> None:
        """Forget all requests and reset both stream counters."""
        self.requests.clear()
        self.cancelled_streams = 0
        self.completed_streams = 0
