"""Offline support signals for one claim against the context: words, hard facts and meaning.

Each signal is a number in [0, 1]; ``combiner`` turns them into the probability
that the claim is unsupported. The context is analysed once (spaCy lemmas and
entities, MiniLM vectors of its sentences) and kept in a small LRU, so several
answer segments, or a chat resent every turn, pay for it once. The context's
sentences are the parser's (``doc.sents``), not ``guards.sentences``: the
combiner was fitted on them, and with the splitter's sentences HaluEval's
held-out AUROC drops (``benchmarks/grounding_quality.py``). A text longer than
spaCy takes at once goes through it in pieces (``sentences.text_pieces``)
joined back into one document.

- ``lexical_missing``: share of the claim's content-word lemmas (stop words and
  punctuation removed) that appear nowhere in the context.
- ``bigram_missing``: share of the claim's adjacent content-lemma pairs absent
  from the context's pairs: right words, wrong relation ("X founded Y" vs "Y founded X" still passes; "Paris
  Hilton" vs "Hilton in Paris" does not).
- ``window_missing``: like ``lexical_missing``, against the best run of
  ``WINDOW_SENTENCES`` context sentences: a claim stitched from words scattered
  over a long context is less likely to be supported than one a passage states.
- ``facts_missing``: share of hard-fact tokens (numbers, and the words of named
  entities, dates and quantities found by spaCy) absent from the context;
  ``facts_missing_count`` counts them (capped at ``MAX_FACTS_COUNTED``, scaled to [0, 1]).
- ``semantic_support``: the best cosine between the claim and any context sentence (all-MiniLM-L6-v2).
- ``entailment_support``: the entailment head's (``nli``) best P(supported) over the ``NLI_CANDIDATES``
  context sentences closest to the claim by cosine: a paraphrase that keeps the facts scores high, a
  sentence on the same topic that changes a number or negates it scores low. Computed only when the
  extractor is given a head (the guard gives it one when its combiner reads this signal); 0 otherwise.
"""

from __future__ import annotations

import hashlib
import itertools
import re
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from guardproxy.embeddings import CachedEncoder, Vectors
from guardproxy.guards.grounding.nli import EntailmentHead, Words, pair_features, word_checks, words_of
from guardproxy.guards.sentences import PIECE_CHARS, text_pieces
from guardproxy.guards.spacy_docs import SPACY_LOCK

if TYPE_CHECKING:
    from spacy.language import Language
    from spacy.tokens import Doc, Span, Token

FEATURES = ("lexical_missing", "bigram_missing", "window_missing", "facts_missing", "facts_missing_count",
            "semantic_support", "entailment_support")

# Entity types whose words are facts a grounded answer must not invent.
FACT_ENTITIES = frozenset({"PERSON", "ORG", "GPE", "LOC", "NORP", "FAC", "EVENT", "WORK_OF_ART", "PRODUCT", "LAW",
                           "LANGUAGE", "DATE", "TIME", "PERCENT", "MONEY", "QUANTITY", "CARDINAL", "ORDINAL"})
# A context longer than this many sentences is embedded in groups of sentences, so the cost stays bounded.
MAX_CONTEXT_SENTENCES = 128
WINDOW_SENTENCES = 3
MAX_FACTS_COUNTED = 4
NLI_CANDIDATES = 3
_DIGITS = re.compile(r"\d")


def _normal(word: str) -> str:
    """Case-folded, with thousands separators and a trailing period dropped: "1,449." -> "1449"."""
    word = word.casefold()
    if _DIGITS.search(word):
        word = word.replace(",", "")
    return word.rstrip(".")


def _is_content(token: Token) -> bool:
    return not (token.is_stop or token.is_punct or token.is_space) and any(c.isalnum() for c in token.text)


def _forms(token: Token) -> set[str]:
    return {_normal(token.text), _normal(token.lemma_)}


@dataclass(frozen=True, slots=True)
class ContextIndex:
    """What a claim is compared with: the context's word forms (with a bit mask of the sentences each occurs in),
    content-lemma pairs, and the vectors and (with an entailment head) the words of its sentences, or groups of
    sentences, row for row."""

    forms: frozenset[str]
    sentence_masks: dict[str, int]
    pairs: frozenset[tuple[str, str]]
    vectors: Vectors
    sentence_words: tuple[Words, ...]


@dataclass(frozen=True, slots=True)
class ClaimSignals:
    lexical_missing: float
    bigram_missing: float
    window_missing: float
    facts_missing: float
    facts_missing_count: float
    semantic_support: float
    entailment_support: float

    def as_features(self) -> dict[str, float]:
        return {name: float(getattr(self, name)) for name in FEATURES}


def _content_lemmas(tokens: Iterable[Token]) -> list[str]:
    return [_normal(t.lemma_) for t in tokens if _is_content(t)]


def _pairs(lemmas: Sequence[str]) -> set[tuple[str, str]]:
    return set(itertools.pairwise(lemmas))


def _sentence_texts(docs: Sequence[Doc]) -> list[str]:
    sentences = [s.text.strip() for doc in docs for s in doc.sents if s.text.strip()]
    if len(sentences) > MAX_CONTEXT_SENTENCES:
        group = -(-len(sentences) // MAX_CONTEXT_SENTENCES)
        sentences = [" ".join(sentences[i : i + group]) for i in range(0, len(sentences), group)]
    return sentences


def _fact_tokens(span: Span | Doc) -> list[Token]:
    """Number tokens and the content words of named entities, dates and quantities, each once."""
    picked: dict[int, Token] = {}
    for entity in span.ents:
        if entity.label_ in FACT_ENTITIES:
            for token in entity:
                if _is_content(token) or _DIGITS.search(token.text):
                    picked[token.i] = token
    for token in span:
        if _DIGITS.search(token.text):
            picked[token.i] = token
    return [picked[i] for i in sorted(picked)]


class SignalExtractor:
    """Computes ``ClaimSignals``. Thread-safe: spaCy's ``pipe`` and the encoder are, and the LRU is locked."""

    def __init__(self, nlp: Language, encoder: CachedEncoder, cache_size: int,
                 head: EntailmentHead | None = None) -> None:
        self._nlp = nlp
        self._head = head
        self._encoder = encoder
        self._cache_size = cache_size
        self._contexts: OrderedDict[bytes, ContextIndex] = OrderedDict()
        self._lock = threading.Lock()

    def context_index(self, passages: Sequence[str]) -> ContextIndex:
        key = hashlib.blake2b("\x00".join(passages).encode("utf-8", "surrogatepass"), digest_size=16).digest()
        with self._lock:
            cached = self._contexts.get(key)
            if cached is not None:
                self._contexts.move_to_end(key)
                return cached
        docs = self._docs(passages)
        sentence_masks: dict[str, int] = {}
        pairs: set[tuple[str, str]] = set()
        count = 0
        for doc in docs:
            for sentence in doc.sents:
                for token in sentence:
                    for form in _forms(token):
                        sentence_masks[form] = sentence_masks.get(form, 0) | 1 << count
                pairs.update(_pairs(_content_lemmas(sentence)))
                count += 1
        sentences = _sentence_texts(docs)
        index = ContextIndex(frozenset(sentence_masks), sentence_masks, frozenset(pairs),
                             self._encoder.encode(sentences),
                             tuple(words_of(s) for s in sentences) if self._head is not None else ())
        if self._cache_size:
            with self._lock:
                self._contexts[key] = index
                while len(self._contexts) > self._cache_size:
                    self._contexts.popitem(last=False)
        return index

    def signals(self, claims: Sequence[str], context: ContextIndex) -> list[ClaimSignals]:
        """One ``ClaimSignals`` per claim text, in order."""
        if not claims:
            return []
        vectors = self._encoder.encode(claims)
        if len(context.vectors):
            cosines = vectors @ context.vectors.T
            semantic = cosines.max(axis=1)
            entailment = (self._entailment(self._head, claims, vectors, cosines, context) if self._head is not None
                          else np.zeros(len(claims), dtype=np.float32))
        else:
            semantic = entailment = np.zeros(len(claims), dtype=np.float32)
        return [self._claim_signals(doc, context, float(best), float(entailed))
                for doc, best, entailed in zip(self._docs(claims), semantic, entailment, strict=True)]

    @staticmethod
    def _entailment(head: EntailmentHead, claims: Sequence[str], vectors: Vectors, cosines: Vectors,
                    context: ContextIndex) -> npt.NDArray[np.float64]:
        """Each claim's best P(supported) over its ``NLI_CANDIDATES`` closest context sentences."""
        take = min(NLI_CANDIDATES, cosines.shape[1])
        nearest = np.argsort(-cosines, axis=1, kind="stable")[:, :take]
        checks = np.array([word_checks(words_of(claim), context.sentence_words[j], float(cosines[i, j]))
                           for i, claim in enumerate(claims) for j in nearest[i]], dtype=np.float32)
        features = pair_features(np.repeat(vectors, take, axis=0), context.vectors[nearest.ravel()], checks)
        best: npt.NDArray[np.float64] = head.probability(features).reshape(len(claims), take).max(axis=1)
        return best

    def _docs(self, texts: Sequence[str]) -> list[Doc]:
        """One analysed ``Doc`` per text; a text past ``PIECE_CHARS`` is analysed in pieces and joined, its text
        and offsets unchanged."""
        from spacy.tokens import Doc

        pieces = [[text[start:end] for start, end in text_pieces(text, PIECE_CHARS)] for text in texts]
        with SPACY_LOCK:  # never while another thread's memory zone is open (spacy_docs.transient_strings)
            analysed = iter(self._nlp.pipe([piece for own in pieces for piece in own]))
            docs = []
            for own in pieces:
                parts = [next(analysed) for _ in own]
                docs.append(parts[0] if len(parts) == 1 else Doc.from_docs(parts, ensure_whitespace=False))
        return docs

    @staticmethod
    def _claim_signals(doc: Doc, context: ContextIndex, semantic: float, entailment: float) -> ClaimSignals:
        content = [t for t in doc if _is_content(t)]
        missing = [t for t in content if not _forms(t) & context.forms]
        lexical = len(missing) / len(content) if content else 0.0
        pairs = _pairs(_content_lemmas(doc))
        bigram = len(pairs - context.pairs) / len(pairs) if pairs else lexical
        facts = _fact_tokens(doc)
        absent = [t for t in facts if not _forms(t) & context.forms]
        facts_missing = len(absent) / len(facts) if facts else 0.0
        facts_count = min(len(absent), MAX_FACTS_COUNTED) / MAX_FACTS_COUNTED
        window = _window_missing(content, context) if content else 0.0
        return ClaimSignals(lexical, bigram, window, facts_missing, facts_count, max(0.0, min(1.0, semantic)),
                            entailment)


def _window_missing(content: Sequence[Token], context: ContextIndex) -> float:
    """Share of ``content`` absent from the best run of ``WINDOW_SENTENCES`` context sentences."""
    masks = []
    for token in content:
        mask = 0
        for form in _forms(token):
            mask |= context.sentence_masks.get(form, 0)
        masks.append(mask)
    window = (1 << WINDOW_SENTENCES) - 1
    starts = {i for mask in masks for i in range(mask.bit_length()) if mask >> i & 1} or {0}
    best = max(sum(1 for mask in masks if mask & (window << start)) for start in starts)
    return 1 - best / len(content)
