"""A small entailment head: P(a context sentence supports a claim) from MiniLM vectors and word checks.

The head is a logistic regression over the pair features of ``pair_features``: the two sentence
vectors ``u`` (claim) and ``v`` (context sentence), ``|u - v|`` and ``u * v`` (the InferSent
recipe), plus a few word-level checks MiniLM is blind to (numbers and content words of the claim
missing from the sentence, a negation on one side only). Its weights ship in ``data/nli_head.npz``,
made by ``training/grounding_nli_fit.py`` from licence-allowed NLI data (see ``data/NOTICE``);
scoring needs numpy only.

Words are split by a regular expression, not spaCy: a claim is compared with its few best-matching
context sentences, and those are compared as plain strings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from spacy.lang.en.stop_words import STOP_WORDS

HEAD_PATH = Path(__file__).parent / "data" / "nli_head.npz"
WORD_CHECKS = ("cosine", "content_missing", "numbers_missing", "negation_mismatch")
_WORD = re.compile(r"[^\W_]+(?:[.,'][^\W_]+)*")
_DIGITS = re.compile(r"\d")
NEGATIONS = frozenset({"not", "no", "never", "none", "nobody", "nothing", "neither", "nor", "without", "n't",
                       "cannot", "nowhere"})


class HeadFileError(ValueError):
    """The head file is missing or does not match the features this code computes."""


@dataclass(frozen=True, slots=True)
class Words:
    """What the word checks need of one sentence: its content words, numbers and whether it negates."""

    content: frozenset[str]
    numbers: frozenset[str]
    negated: bool


def words_of(text: str) -> Words:
    tokens = [t.casefold() for t in _WORD.findall(text.replace("n't", " n't"))]
    numbers = frozenset(t.replace(",", "") for t in tokens if _DIGITS.search(t))
    content = frozenset(t for t in tokens if t not in STOP_WORDS and t not in NEGATIONS)
    negated = any(t in NEGATIONS or t.endswith("n't") for t in tokens) or "n't" in text
    return Words(content, numbers, negated)


def word_checks(claim: Words, sentence: Words, cosine: float) -> list[float]:
    """The scalar pair features, in ``WORD_CHECKS`` order, each in [0, 1] (the cosine in [-1, 1])."""
    content = len(claim.content - sentence.content) / len(claim.content) if claim.content else 0.0
    numbers = len(claim.numbers - sentence.numbers) / len(claim.numbers) if claim.numbers else 0.0
    return [cosine, content, numbers, float(claim.negated != sentence.negated)]


def pair_features(u: npt.NDArray[np.float32], v: npt.NDArray[np.float32],
                  checks: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """Rows of ``[u, v, |u - v|, u * v, checks]`` for claim vectors ``u`` and sentence vectors ``v`` (one
    pair per row)."""
    return np.hstack([u, v, np.abs(u - v), u * v, checks]).astype(np.float32)


@dataclass(frozen=True, slots=True)
class EntailmentHead:
    coefficients: npt.NDArray[np.float32]
    intercept: float

    def probability(self, features: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
        """P(entailed) per row of ``pair_features``."""
        logits = features.astype(np.float64) @ self.coefficients.astype(np.float64) + self.intercept
        return 1 / (1 + np.exp(-np.clip(logits, -30, 30)))


def load_head(path: Path = HEAD_PATH) -> EntailmentHead:
    try:
        with np.load(path, allow_pickle=False) as body:
            coefficients = np.asarray(body["coefficients"], dtype=np.float32)
            intercept = float(body["intercept"])
            checks = [str(name) for name in body["word_checks"]]
    except (OSError, ValueError, KeyError) as exc:
        raise HeadFileError(f"{path}: not an entailment head file: {exc}") from None
    if checks != list(WORD_CHECKS) or coefficients.shape != (4 * 384 + len(WORD_CHECKS),):
        raise HeadFileError(f"{path}: its features do not match this code's; retrain it with "
                            "python training/grounding_nli_fit.py")
    return EntailmentHead(coefficients, intercept)
