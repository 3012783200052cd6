"""The injection guard: direct injection in user messages, indirect injection in what the model reads.

- A user message (``direct_roles``, or a segment with no role) is scored whole by the direct
  model. A finding there is a ``jailbreak`` when the text frames a persona or talks of lifting
  restrictions (``signals.is_jailbreak``), else a ``prompt_injection``; it covers the whole segment.
- A tool result (``indirect_roles``), a block of a user message delimited by one of
  ``context_tags`` (``<document>…</document>``) and, on the input stage, each
  ``guardproxy.context`` document are scored window by window by the indirect model; every window
  over ``indirect_threshold`` is an ``indirect_injection`` finding with that window's span. A
  finding in a document sets ``Finding.document`` (its segment is -1).

System and assistant messages are not scanned: the operator wrote the one, the model the other.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from guardproxy.guards.api import Finding, GuardConfig, GuardContext, GuardKind, Segment, raise_if_abandoned
from guardproxy.guards.injection.config import InjectionConfig
from guardproxy.guards.injection.head import InjectionHead
from guardproxy.guards.injection.signals import is_jailbreak, signal_matrix
from guardproxy.guards.injection.windows import text_windows

INDIRECT = "indirect_injection"
_TAG_ATTRIBUTES = r"\b[^<>]{0,200}>"


@dataclass(frozen=True, slots=True)
class _Window:
    """``text[start:end]`` of segment ``segment``, or of document ``document`` when that is set."""

    segment: int
    document: int | None
    start: int
    end: int
    text: str


class InjectionGuard:
    Config: ClassVar[type[GuardConfig]] = InjectionConfig
    kind: GuardKind = "cpu"
    cacheable = False  # a request's documents are scanned too, and they are not part of any segment

    def __init__(self, config: InjectionConfig) -> None:
        self.config = config
        self._head = InjectionHead(config.cache_size)
        tags = "|".join(re.escape(tag) for tag in config.context_tags)
        self._opening = re.compile(rf"<({tags}){_TAG_ATTRIBUTES}", re.IGNORECASE) if tags else None

    def warm(self) -> None:
        """Load the weights and the encoder, and run both models once."""
        self.scan([Segment("Warm up the injection guard, please.", role="user"),
                   Segment("A tool result to warm up with.", role="tool")], GuardContext("input"))

    def delimited_blocks(self, text: str) -> list[tuple[int, int]]:
        """(start, end) of the content of each ``<tag …>…</tag>`` block, for tags in ``context_tags``."""
        if self._opening is None:
            return []
        blocks: list[tuple[int, int]] = []
        position = 0
        while (opening := self._opening.search(text, position)) is not None:
            closing = text.lower().find(f"</{opening.group(1).lower()}>", opening.end())
            end = len(text) if closing < 0 else closing
            blocks.append((opening.end(), end))
            position = end
        return blocks

    def _windows(self, text: str, segment: int, document: int | None, offset: int = 0) -> list[_Window]:
        return [_Window(segment, document, offset + w.start, offset + w.end, text[w.start:w.end])
                for w in text_windows(text, self.config.window_chars)]

    def _units(self, segments: Sequence[Segment], context: GuardContext) -> tuple[list[tuple[int, str]], list[_Window]]:
        """The direct texts (segment index, text outside delimited blocks) and the indirect windows."""
        config = self.config
        direct: list[tuple[int, str]] = []
        indirect: list[_Window] = []
        for index, segment in enumerate(segments):
            text = segment.text
            if len(text.strip()) < config.min_chars:
                continue
            if segment.role in config.indirect_roles:
                if config.indirect:
                    indirect.extend(self._windows(text, index, None))
            elif segment.role is None or segment.role in config.direct_roles:
                blocks = self.delimited_blocks(text) if config.indirect else []
                outside, position = [], 0
                for start, end in blocks:
                    indirect.extend(self._windows(text[start:end], index, None, start))
                    outside.append(text[position:start])
                    position = end
                outside.append(text[position:])
                remainder = "\n".join(outside)
                if config.direct and len(remainder.strip()) >= config.min_chars:
                    direct.append((index, remainder))
        if config.indirect and context.stage == "input":
            for number, document in enumerate(context.documents):
                if len(document.strip()) >= config.min_chars:
                    indirect.extend(self._windows(document, -1, number))
        return direct, indirect

    def scan(self, segments: Sequence[Segment], context: GuardContext) -> list[Finding]:
        direct, indirect = self._units(segments, context)
        findings: list[Finding] = []
        if direct:
            texts = [text for _, text in direct]
            signals = signal_matrix(texts)
            windows = [[text[w.start:w.end] for w in text_windows(text, self.config.window_chars)] for text in texts]
            scores = self._head.direct(windows, signals)
            for (index, _), row, score in zip(direct, signals, scores, strict=True):
                if score >= self.config.threshold:
                    label = "jailbreak" if is_jailbreak(row) else "prompt_injection"
                    findings.append(Finding(label, float(np.round(score, 4)), index))
        raise_if_abandoned()
        if indirect:
            scores = self._head.indirect([w.text for w in indirect])
            threshold = self.config.indirect_threshold
            findings.extend(Finding(INDIRECT, float(np.round(s, 4)), w.segment, w.start, w.end, document=w.document)
                            for w, s in zip(indirect, scores, strict=True) if s >= threshold)
        return findings
