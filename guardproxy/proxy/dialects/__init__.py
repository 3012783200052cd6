"""The table of API shapes the proxy guards: one module per shape (``base.py`` says
what a dialect declares), and ``DIALECTS``, keyed by canonical path."""

from __future__ import annotations

from guardproxy.proxy.dialects.base import ALL_CHOICES, CallBuffer, ChoiceStreamShape, Dialect, RequestShapeError
from guardproxy.proxy.dialects.chat import ChatDialect
from guardproxy.proxy.dialects.completions import CompletionsDialect
from guardproxy.proxy.dialects.embeddings import EmbeddingsDialect
from guardproxy.proxy.dialects.json_paths import apply_texts

DIALECTS: dict[str, Dialect] = {d.path: d for d in (ChatDialect(), CompletionsDialect(), EmbeddingsDialect())}
GUARDED_PATHS = frozenset(DIALECTS)

__all__ = [
           "ALL_CHOICES",
           "DIALECTS",
           "GUARDED_PATHS",
           "CallBuffer",
           "ChoiceStreamShape",
           "Dialect",
           "RequestShapeError",
           "apply_texts",
]
