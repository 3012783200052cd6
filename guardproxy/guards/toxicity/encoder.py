"""The ``detector: encoder`` signal: MiniLM-L6 fine-tuned as a toxicity classifier, int8 ONNX.

A bag of words sees slurs and swearing but not hate said politely, and a frozen sentence
embedding with a linear head did not carry across sources; fine-tuning the whole encoder
does. ``data/encoder_int8.onnx`` takes token ids and an attention mask and returns
P(toxic) per text (mean pooling and the linear head are inside the graph). It is made by
``training/toxicity_encoder.py`` from permissively licensed data only (``data/NOTICE``) and
runs with onnxruntime and the MiniLM tokenizer vendored in ``guardproxy/embeddings/data``:
no torch, no network.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from guardproxy.embeddings import TOKENIZER_PATH
from guardproxy.guards.abandonment import raise_if_abandoned

if TYPE_CHECKING:
    from onnxruntime import InferenceSession
    from tokenizers import Tokenizer

MODEL_PATH = Path(__file__).parent / "data" / "encoder_int8.onnx"
MAX_TOKENS = 128  # a scoring window (``window_chars``, 200 by default) fits in far fewer
_BATCH = 32
Scores = npt.NDArray[np.float64]


class EncoderScorer:
    """Thread-safe; the session and tokenizer load on first use (``warm``)."""

    def __init__(self, threads: int = 1, path: Path = MODEL_PATH) -> None:
        self._threads = threads
        self._path = path
        self._state: tuple[InferenceSession, Tokenizer] | None = None
        self._lock = threading.Lock()

    def load(self) -> tuple[InferenceSession, Tokenizer]:
        with self._lock:
            if self._state is None:
                # Imported here, as the embeddings do: most policies never load a transformer.
                import onnxruntime as ort
                from tokenizers import Tokenizer

                options = ort.SessionOptions()
                options.intra_op_num_threads = self._threads
                options.inter_op_num_threads = 1
                options.enable_cpu_mem_arena = False
                options.enable_mem_pattern = False
                session = ort.InferenceSession(str(self._path), options, providers=["CPUExecutionProvider"])
                tokenizer = Tokenizer.from_file(str(TOKENIZER_PATH))
                tokenizer.enable_truncation(max_length=MAX_TOKENS)
                tokenizer.no_padding()
                self._state = (session, tokenizer)
            return self._state

    def score(self, texts: Sequence[str]) -> Scores:
        """P(toxic) per text; texts of similar length run together, so little padding is computed."""
        scores = np.zeros(len(texts), dtype=np.float64)
        if not texts:
            return scores
        session, tokenizer = self.load()
        token_ids = [e.ids for e in tokenizer.encode_batch(list(texts))]
        order = sorted(range(len(texts)), key=lambda i: len(token_ids[i]))
        for start in range(0, len(order), _BATCH):
            raise_if_abandoned()
            group = order[start:start + _BATCH]
            ids = np.zeros((len(group), max(len(token_ids[i]) for i in group)), dtype=np.int64)
            mask = np.zeros_like(ids)
            for row, index in enumerate(group):
                ids[row, :len(token_ids[index])] = token_ids[index]
                mask[row, :len(token_ids[index])] = 1
            scores[group] = session.run(None, {"input_ids": ids, "attention_mask": mask})[0]
        return scores
