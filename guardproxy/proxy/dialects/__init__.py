"""The table of API shapes the proxy guards: one module per shape (``base.py`` says
what a dialect declares), ``DIALECTS``, keyed by canonical path, and ``resolve``,
which also knows Azure's deployment paths."""

from __future__ import annotations

from dataclasses import dataclass

from guardproxy.proxy.dialects.azure import AZURE_DIALECTS, azure_route
from guardproxy.proxy.dialects.base import ALL_CHOICES, CallBuffer, ChoiceStreamShape, Dialect, RequestShapeError
from guardproxy.proxy.dialects.chat import ChatDialect
from guardproxy.proxy.dialects.completions import CompletionsDialect
from guardproxy.proxy.dialects.embeddings import EmbeddingsDialect
from guardproxy.proxy.dialects.json_paths import apply_texts
from guardproxy.proxy.dialects.messages import CountTokensDialect, MessagesDialect
from guardproxy.proxy.dialects.responses import ResponsesDialect

DIALECTS: dict[str, Dialect] = {d.path: d for d in (ChatDialect(), CompletionsDialect(), EmbeddingsDialect(),
                                                    ResponsesDialect(), MessagesDialect(), CountTokensDialect())}
GUARDED_PATHS = frozenset(DIALECTS)
ALL_DIALECTS: tuple[Dialect, ...] = (*DIALECTS.values(), *AZURE_DIALECTS.values())
API_NAMES = frozenset(d.name for d in ALL_DIALECTS)


@dataclass(frozen=True, slots=True)
class Resolved:
    path: str  # the canonical path
    dialect: Dialect
    deployment: str | None = None  # Azure's deployment, which stands for the model


def resolve(path: str) -> Resolved | None:
    """The dialect that guards a canonical path, if any."""
    dialect = DIALECTS.get(path)
    if dialect is not None:
        return Resolved(path, dialect)
    if path[:8].lower() == "/openai/":
        azure = azure_route(path)
        if azure is not None:
            return Resolved(*azure)
    return None


__all__ = [
           "ALL_CHOICES",
           "ALL_DIALECTS",
           "API_NAMES",
           "DIALECTS",
           "GUARDED_PATHS",
           "CallBuffer",
           "ChoiceStreamShape",
           "Dialect",
           "RequestShapeError",
           "Resolved",
           "apply_texts",
           "resolve",
]
