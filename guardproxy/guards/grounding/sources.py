"""Where the context an answer must be grounded in comes from.

``extension``: the documents the client sent in the request's ``guardproxy.context``
field. ``tools``: the results of tool calls (messages with role ``tool``).
``delimited``: text between the policy's delimiters (``<context>…</context>`` by
default) inside system or user messages, the usual way RAG prompts paste passages.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from guardproxy.guards.base import GuardContext
from guardproxy.guards.grounding.config import ContextSource, Delimiters

DELIMITED_ROLES = ("system", "user")


def delimited_passages(text: str, delimiters: Delimiters) -> list[str]:
    """Every non-blank passage between an open and the next close delimiter; an unclosed one is ignored."""
    pattern = re.escape(delimiters.open) + r"(.*?)" + re.escape(delimiters.close)
    return [match.strip() for match in re.findall(pattern, text, flags=re.DOTALL) if match.strip()]


def context_passages(context: GuardContext, sources: Sequence[ContextSource], delimiters: Delimiters) -> list[str]:
    """The non-blank context passages from ``sources``, in the order the sources are listed."""
    passages: list[str] = []
    for source in sources:
        if source == "extension":
            passages.extend(d for d in context.documents if d.strip())
        elif source == "tools":
            passages.extend(s.text for s in context.prompt if s.role == "tool" and s.text.strip())
        else:
            for segment in context.prompt:
                if segment.role in DELIMITED_ROLES:
                    passages.extend(delimited_passages(segment.text, delimiters))
    return passages
