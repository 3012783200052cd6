"""Which stream guard reads a dialect's stream: the choice-based APIs' (chat, text
completions), the Responses API's, or Anthropic Messages'. All share ``ChannelGuard``."""

from __future__ import annotations

from collections.abc import Sequence

from guardproxy.engine import Engine
from guardproxy.guards import GuardContext
from guardproxy.policy.schema import GuardEntry, Policy
from guardproxy.proxy.channel_guard import ChainRan, ChannelGuard
from guardproxy.proxy.dialects import Dialect
from guardproxy.proxy.messages_stream import MessagesStreamGuard
from guardproxy.proxy.responses_stream import ResponsesStreamGuard
from guardproxy.proxy.restoration import Restorer
from guardproxy.proxy.stream_guard import StreamGuard


def new_stream_guard(
    engine: Engine, policy: Policy, entries: Sequence[GuardEntry], context: GuardContext, dialect: Dialect,
    restorer: Restorer | None = None, choices: int = 1, on_run: ChainRan | None = None,
) -> ChannelGuard:
    if dialect.stream_family == "responses":
        return ResponsesStreamGuard(engine, policy, entries, context, restorer, on_run)
    if dialect.stream_family == "messages":
        return MessagesStreamGuard(engine, policy, entries, context, restorer, on_run)
    return StreamGuard(engine, policy, entries, context, dialect, restorer, choices, on_run)
