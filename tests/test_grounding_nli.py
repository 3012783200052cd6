"""guardproxy/guards/grounding/nli.py: the shipped entailment head and its word checks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from guardproxy.embeddings import shared_encoder
from guardproxy.guards.grounding.nli import (
    HEAD_PATH,
    WORD_CHECKS,
    EntailmentHead,
    HeadFileError,
    load_head,
    pair_features,
    word_checks,
    words_of,
)

EVIDENCE = "The Eiffel Tower was completed in 1889 and is 330 metres tall."
SUPPORTED = ["The Eiffel Tower was finished in 1889.", "The Eiffel Tower is 330 metres tall."]
# Each claim of SUPPORTED with its number changed, in the same order.
NUMBER_CHANGED = ["The Eiffel Tower was finished in 1925.", "The Eiffel Tower is 120 metres tall."]
NOT_SUPPORTED = ["The Eiffel Tower is not 330 metres tall.", "Bananas are rich in potassium.",
                 "The tower was built for the World Cup in Qatar."]


@pytest.fixture(scope="module")
def head() -> EntailmentHead:
    return load_head()


def _probabilities(head: EntailmentHead, claims: list[str], evidence: str) -> np.ndarray:
    vectors = shared_encoder().encode([*claims, evidence])
    u, v = vectors[:-1], np.repeat(vectors[-1:], len(claims), axis=0)
    checks = np.array([word_checks(words_of(c), words_of(evidence), float(a @ b))
                       for c, a, b in zip(claims, u, v, strict=True)], dtype=np.float32)
    return head.probability(pair_features(u, v, checks))


def test_the_shipped_head_loads_and_matches_the_features(head: EntailmentHead) -> None:
    assert HEAD_PATH.is_file()
    assert head.coefficients.shape == (4 * 384 + len(WORD_CHECKS),)


def test_supported_claims_pass_and_negated_or_unrelated_ones_do_not(head: EntailmentHead) -> None:
    supported = _probabilities(head, SUPPORTED, EVIDENCE)
    refuted = _probabilities(head, NOT_SUPPORTED, EVIDENCE)
    assert all(0 <= p <= 1 for p in [*supported, *refuted])
    assert min(supported) > 0.5 > max(refuted)


def test_a_changed_number_lowers_support(head: EntailmentHead) -> None:
    right = _probabilities(head, SUPPORTED, EVIDENCE)
    changed = _probabilities(head, NUMBER_CHANGED, EVIDENCE)
    assert all(c < r for c, r in zip(changed, right, strict=True))


def test_word_checks() -> None:
    claim, sentence = words_of("It wasn't built in 1889 by Eiffel."), words_of("Eiffel built it in 1889.")
    cosine, content, numbers, negation = word_checks(claim, sentence, 0.9)
    assert cosine == 0.9 and content == 0 and numbers == 0 and negation == 1
    cosine, content, numbers, negation = word_checks(words_of("Gaudi built it in 1925."), sentence, 0.5)
    assert numbers == 1 and content == pytest.approx(2 / 3) and negation == 0


def test_a_wrong_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "head.npz"
    np.savez(path, coefficients=np.zeros(10, dtype=np.float32), intercept=0.0, word_checks=np.array(WORD_CHECKS))
    with pytest.raises(HeadFileError):
        load_head(path)
    with pytest.raises(HeadFileError):
        load_head(tmp_path / "missing.npz")
