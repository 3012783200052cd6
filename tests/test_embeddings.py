"""The int8 ONNX encoder against sentence-transformers' own all-MiniLM-L6-v2 (see tests/data/minilm_reference.json)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

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
