"""The int8 ONNX encoder against sentence-transformers' own all-MiniLM-L6-v2 (see tests/data/minilm_reference.json)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from guardproxy.embeddings import DIMENSIONS, shared_encoder

REFERENCE = Path(__file__).parent / "data" / "minilm_reference.json"


def test_shared_encoder_matches_sentence_transformers_reference() -> None:
    reference = json.loads(REFERENCE.read_text())
    expected = np.array(reference["vectors"], dtype=np.float32)
    vectors = shared_encoder().encode(reference["sentences"])
    assert vectors.shape == (len(reference["sentences"]), DIMENSIONS)
    cosines = (vectors * expected).sum(axis=1) / np.linalg.norm(expected, axis=1)
    assert cosines.min() >= 0.99, cosines


def test_vectors_are_normalised_and_distinguish_sentences() -> None:
    vectors = shared_encoder().encode(["book a flight to Rome", "what is my checking balance"])
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert float(vectors[0] @ vectors[1]) < 0.5


def test_texts_run_in_length_groups_get_the_vectors_they_get_alone() -> None:
    texts = ["hi", "book a flight to Rome next Friday", "hi", "what is my checking balance",
             "A much longer sentence about the quarterly report, the budget and the offsite in Lisbon next spring."]
    encoder = shared_encoder()
    together = encoder.encode(texts)
    alone = np.vstack([encoder.encode([text]) for text in texts])
    assert np.array_equal(together, alone)


def test_length_groups_cover_every_text_once_and_save_padding() -> None:
    from guardproxy.embeddings import _MAX_GROUP, _length_groups

    assert _length_groups([]) == []
    assert _length_groups([24, 18, 8]) == [[2], [1, 0]]  # 8 alone; padding 18 to 24 is cheaper than a run
    groups = _length_groups([12] * 70)
    assert sorted(i for group in groups for i in group) == list(range(70))
    assert max(len(group) for group in groups) <= _MAX_GROUP


def test_onnxruntime_loads_only_with_the_encoder() -> None:
    import subprocess
    import sys

    code = ("import sys\nimport guardproxy.http.app\nprint('onnxruntime' in sys.modules)\n"
            "from guardproxy.embeddings import shared_encoder\nshared_encoder()\nprint('onnxruntime' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["False", "True"]


@pytest.mark.parametrize("text", [
    "The quick brown fox jumps over the lazy dog. " * 400,  # everyday text: the first head is enough
    ("x" * 150 + " ") * 200,  # words longer than the tokenizer's 100 characters: one token each
    "\u4e2d\u6587" * 5000,  # no space at all: the whole text is tokenized
    " " * 20_000 + "a late start",  # the head is grown until it holds the words
])
def test_only_a_head_of_a_long_text_is_tokenized_with_the_ids_of_the_whole(text: str) -> None:
    encoder = shared_encoder()
    assert encoder._token_ids([text]) == [encoder._tokenizer.encode(text).ids]


def test_a_3_mb_text_is_embedded_as_its_first_tokens() -> None:
    encoder = shared_encoder()
    sentence = "Book me a flight to Rome next Friday, and a hotel near the station for two nights. "
    text = sentence * (3_000_000 // len(sentence) + 1)
    head = sentence * 40  # more than MAX_TOKENS tokens
    assert np.array_equal(encoder.encode([text]), encoder.encode([head]))
