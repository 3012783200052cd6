"""The guard contract: what every guard receives and what it returns.

A guard sees text segments and a context, and returns scored findings. It never
touches HTTP, metrics or tracing: the engine decides what a finding does
(block, redact, flag), applies modes, timeouts and ``on_error``, and telemetry
observes the engine.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Protocol, cast, get_args

from pydantic import BaseModel, ConfigDict

Stage = Literal["input", "output"]
PathPart = str | int
GuardKind = Literal["inline", "cpu", "io"]


@dataclass(frozen=True, slots=True)
class Segment:
    """One piece of text and where it sits in the payload.

    ``path`` walks the JSON payload, e.g. ``("messages", 2, "content", 0, "text")``
    or ``("choices", 0, "message", "tool_calls", 1, "function", "arguments")``.
    ``role`` is the chat role of the message the text belongs to, if any.
    ``call`` marks text that a tool call carries (function arguments, a custom
    tool's free-form input, a ``tool_use`` input): data for a tool rather than
    prose. The dialects set it, so a guard that treats prose differently (the
    grounding guard scores claims) never needs to know an API's field names.
    """

    text: str
    path: tuple[PathPart, ...] = ()
    role: str | None = None
    call: bool = False


class UpstreamClient(Protocol):
    """How a guard reaches a model behind the upstream API (a moderation
    endpoint, an LLM judge) without knowing about HTTP.

    Asynchronous: a guard that calls it declares ``kind = "io"`` and awaits it
    from its ``async def scan`` on the event loop. ``timeout`` bounds the whole
    call, in seconds. Failures raise ``UpstreamCallError``, which the engine
    treats like any guard error (``on_error``).
    """

    async def post_json(self, path: str, body: Mapping[str, Any], timeout: float) -> Any: ...


class UpstreamCallError(Exception):
    """The upstream could not answer a guard's call (status, transport, bad JSON)."""


@dataclass(frozen=True, slots=True)
class GuardContext:
    """What a guard may know about the request besides the text it scans.

    ``documents`` are the retrieved passages an answer should be grounded in.
    ``upstream`` is set when the guard runs inside the proxy (None in ``eval``).
    """

    stage: Stage
    endpoint: str = ""
    model: str | None = None
    documents: tuple[str, ...] = ()
    prompt: tuple[Segment, ...] = field(default=())
    upstream: UpstreamClient | None = None


@dataclass(frozen=True, slots=True)
class Finding:
    """A scored detection in one segment.

    ``start``/``end`` (end exclusive) index ``segments[segment].text``; a finding
    without a span concerns the whole segment. ``replacement`` is the text a
    redaction puts in place of the span; the engine uses ``[LABEL]`` if unset.
    ``restorable`` asks the engine to put the original value back where the
    model's answer repeats ``replacement`` (reversible placeholders).
    ``document``, when set, says the finding is in ``context.documents[document]``
    rather than in a segment: ``segment`` is then -1 and the span indexes that
    document. Documents are not forwarded, so such a finding is never redacted.
    """

    label: str
    score: float
    segment: int
    start: int | None = None
    end: int | None = None
    replacement: str | None = None
    restorable: bool = False
    document: int | None = None


def validate_regex(pattern: str) -> str:
    """For guard configs: a policy's regular expression must compile and must
    not match the empty string (it would fire everywhere)."""
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"{pattern!r} is not a valid regular expression: {exc}") from exc
    if compiled.match(""):
        raise ValueError(f"{pattern!r} matches the empty string")
    return pattern


class GuardConfig(BaseModel):
    """Base for a guard's own policy keys. Unknown keys are an error."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Guard(Protocol):
    """What a guard implements.

    ``Config`` validates the guard's own keys from the policy entry.
    ``warm()`` loads models so the first request does not pay for it.

    ``kind`` says where the engine runs ``scan``, under the entry's timeout
    (a guard whose mode depends on its settings makes it a property):

    - ``"inline"``: cheap work (a few regular expressions), called on the event
      loop; it must not block.
    - ``"cpu"``: model inference and other real work, run in the engine's bounded
      thread pool; a scan past its timeout is abandoned (``raise_if_abandoned``).
      A guard that declares no ``kind`` runs here.
    - ``"io"``: waits on the network, typically through ``context.upstream``:
      ``scan`` returns an awaitable (write it ``async def``), awaited on the event
      loop under ``asyncio.timeout``; no thread is used. It may also return its
      findings directly when there is nothing to ask.

    ``cacheable`` is optional and off unless declared: ``True`` promises that
    the findings for a segment depend only on that segment's ``text`` and
    ``role`` and on the guard's settings (not on other segments, the stage, the
    documents, the prompt, the upstream or the time). The engine may then
    remember each segment's findings and scan only segments it has not seen, so
    the history a chat resends every turn is not scanned again. A guard whose
    settings decide it (one that may call the upstream) can make it a property.
    """

    Config: ClassVar[type[GuardConfig]]

    @property
    def kind(self) -> GuardKind: ...

    def __init__(self, config: Any) -> None: ...

    def warm(self) -> None: ...

    def scan(
        self, segments: Sequence[Segment], context: GuardContext
    ) -> list[Finding] | Awaitable[list[Finding]]: ...


def guard_kind(guard: object) -> GuardKind:
    """The guard's declared ``kind`` (see ``Guard``); ``"cpu"`` for a guard that declares none."""
    kind = getattr(guard, "kind", "cpu")
    if kind not in get_args(GuardKind):
        raise TypeError(f"{type(guard).__name__}.kind is {kind!r}; it must be one of {', '.join(get_args(GuardKind))}")
    return cast(GuardKind, kind)


def findings_cacheable(guard: object) -> bool:
    """Whether ``guard`` declares ``cacheable`` (see ``Guard``); a guard that says nothing is not."""
    return getattr(guard, "cacheable", False) is True
