"""Keyword phrases matched on lemmas, with the spaCy pipeline the PII guard already loads.

A keyword matches a run of tokens when each of its words equals the token's
text or lemma (case-folded), and the keyword's own lemma counts too: the
keyword ``prescribe`` matches "prescribing" and "prescribed", and the keyword
``prescribing`` matches "prescribe". Matching is on whole tokens, so ``bank``
never fires inside "embankment". Derivations are not lemmas: "prescription"
needs its own keyword. A text longer than spaCy takes at once is tokenized in
pieces cut at sentence ends (``sentences.text_pieces``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from guardproxy.guards.sentences import PIECE_CHARS, text_pieces
from guardproxy.guards.spacy_docs import SPACY_LOCK, shared_doc

if TYPE_CHECKING:
    from spacy.language import Language
    from spacy.tokens import Doc

# The parser and NER are not needed for lemmas; skipping them makes a sentence ~1 ms.
_UNUSED_PIPES = ("parser", "ner")
_CANDIDATE_CACHE = 65536  # distinct token texts whose possible lemmas are remembered
# Tokens tagged on either side of a token that may start a keyword. A tag depends on the tokens around
# it only as far as the tagger's encoder sees (4 either side in en_core_web_sm's window CNN), so a
# piece with this margin tags its candidates as the whole text would, at the cost of the piece.
_TAG_MARGIN = 16


@dataclass(frozen=True, slots=True)
class KeywordHit:
    """``topic`` was named at ``text[start:end]``."""

    topic: str
    start: int
    end: int


def _token_forms(doc: Doc) -> list[tuple[frozenset[str], int, int]]:
    return [(frozenset({t.lower_, t.lemma_.casefold()}), t.idx, t.idx + len(t.text)) for t in doc if not t.is_space]


def _possible_lemmas(nlp: Language) -> Callable[[str], frozenset[str]] | None:
    """Every lemma (case-folded) a token with this text could get, whatever its tag, or None when
    that cannot be told without tagging.

    spaCy's rule lemmatizer picks, by part of speech, among the forms its suffix rules and
    exception lists give, or keeps the text (lower-cased, or as written for proper nouns); the
    attribute ruler may set a lemma instead. The union over every part of speech holds the lemma
    the tagger's choice leads to, so a text none of whose tokens can reach a keyword's first word
    needs no tagging: most texts, for which this check (a tokenization and set lookups) replaces
    tok2vec, tagger, attribute ruler and lemmatizer, about three times the cost.
    """
    if "lemmatizer" not in nlp.pipe_names or getattr(nlp.get_pipe("lemmatizer"), "mode", None) != "rule":
        return None
    lookups = nlp.get_pipe("lemmatizer").lookups  # type: ignore[attr-defined]
    index, exceptions, rules = (lookups.get_table(name, {}) for name in ("lemma_index", "lemma_exc", "lemma_rules"))
    parts_of_speech = set(index) | set(exceptions) | set(rules)

    @functools.lru_cache(maxsize=_CANDIDATE_CACHE)
    def possible(text: str) -> frozenset[str]:
        lower = text.lower()
        forms = {text, lower}
        for pos in parts_of_speech:
            forms.update(exceptions.get(pos, {}).get(lower, ()))
            for old, new in rules.get(pos, ()):
                if lower.endswith(old):
                    forms.add(lower[: len(lower) - len(old)] + new)
        return frozenset(forms | {form.casefold() for form in forms})

    return possible


def _ruler_lemmas(nlp: Language) -> frozenset[str]:
    """The lemmas the attribute ruler sets outright (case-folded)."""
    if "attribute_ruler" not in nlp.pipe_names:
        return frozenset()
    patterns = nlp.get_pipe("attribute_ruler").patterns  # type: ignore[attr-defined]
    return frozenset(str(p["attrs"]["LEMMA"]).casefold() for p in patterns if "LEMMA" in p["attrs"])


class LemmaMatcher:
    """Finds every topic keyword in texts. Thread-safe: spaCy's ``pipe`` does not mutate the pipeline."""

    def __init__(self, nlp: Language, keywords: Iterable[tuple[str, str]]) -> None:
        """``keywords`` are (topic, phrase) pairs; phrases are lemmatised here, once."""
        self._nlp = nlp
        pairs = list(keywords)
        docs = nlp.pipe([phrase for _, phrase in pairs], disable=list(_UNUSED_PIPES))
        self._phrases: dict[str, list[tuple[str, list[frozenset[str]]]]] = {}
        for (topic, _), doc in zip(pairs, docs, strict=True):
            words = [forms for forms, _, _ in _token_forms(doc)]
            if words:
                for form in words[0]:
                    self._phrases.setdefault(form, []).append((topic, words))
        # A first word the attribute ruler can set as a lemma ("be", "go", "you") may match any token.
        self._longest = max((len(words) for entries in self._phrases.values() for _, words in entries), default=1)
        possible = _possible_lemmas(nlp)
        self._possible = None if possible is None or not _ruler_lemmas(nlp).isdisjoint(self._phrases) else possible

    def find(self, texts: Sequence[str]) -> list[list[KeywordHit]]:
        """Hits per text, in text order. Only the pieces of a text around tokens that may start a
        keyword are tagged (``_TAG_MARGIN``); most texts have none and are never tagged."""
        hits: list[list[KeywordHit]] = [[] for _ in texts]
        if not self._phrases:
            return hits
        pieces: list[tuple[int, int]] = []  # (text, character offset of the piece)
        piece_texts: list[str] = []
        with SPACY_LOCK:  # never while another thread's memory zone is open (spacy_docs.transient_strings)
            for index, text in enumerate(texts):
                for offset, stop in text_pieces(text, PIECE_CHARS):
                    doc = shared_doc(self._nlp, text[offset:stop])
                    for first, last in self._candidate_pieces(doc):
                        start = offset + doc[first].idx
                        end = offset + doc[last - 1].idx + len(doc[last - 1].text)
                        pieces.append((index, start))
                        piece_texts.append(text[start:end])
            for (index, offset), doc in zip(pieces, self._nlp.pipe(piece_texts, disable=list(_UNUSED_PIPES)),
                                            strict=True):
                hits[index].extend(KeywordHit(h.topic, h.start + offset, h.end + offset)
                                   for h in self._find_in(doc))
        return hits

    def _candidate_pieces(self, doc: Doc) -> list[tuple[int, int]]:
        """Token ranges [first, last) to tag: each token that may start a keyword with ``_TAG_MARGIN``
        tokens either side (after it, beyond the longest keyword), overlapping ranges merged."""
        if not len(doc):
            return []
        possible = self._possible
        if possible is None:
            return [(0, len(doc))]
        after = _TAG_MARGIN + self._longest
        pieces: list[tuple[int, int]] = []
        for token in doc:
            if possible(token.text).isdisjoint(self._phrases):
                continue
            first, last = max(0, token.i - _TAG_MARGIN), min(len(doc), token.i + after)
            if pieces and first <= pieces[-1][1]:
                pieces[-1] = (pieces[-1][0], last)
            else:
                pieces.append((first, last))
        return pieces

    def _find_in(self, doc: Doc) -> list[KeywordHit]:
        tokens = _token_forms(doc)
        hits: list[KeywordHit] = []
        seen: set[tuple[str, int, int]] = set()
        for i, (forms, start, _) in enumerate(tokens):
            for form in forms:
                for topic, words in self._phrases.get(form, ()):
                    window = tokens[i : i + len(words)]
                    if len(window) == len(words) and all(f & w for (f, _, _), w in zip(window, words, strict=True)):
                        key = (topic, start, window[-1][2])
                        if key not in seen:
                            seen.add(key)
                            hits.append(KeywordHit(*key))
        return hits
