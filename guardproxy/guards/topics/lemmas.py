"""Keyword phrases matched on lemmas, with the spaCy pipeline the PII guard already loads.

A keyword matches a run of tokens when each of its words equals the token's
text or lemma (case-folded), and the keyword's own lemma counts too: the
keyword ``prescribe`` matches "prescribing" and "prescribed", and the keyword
``prescribing`` matches "prescribe". Matching is on whole tokens, so ``bank``
never fires inside "embankment". Derivations are not lemmas: "prescription"
needs its own keyword.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from spacy.language import Language
    from spacy.tokens import Doc

# The parser and NER are not needed for lemmas; skipping them makes a sentence ~1 ms.
_UNUSED_PIPES = ("parser", "ner")


@dataclass(frozen=True, slots=True)
class KeywordHit:
    """``topic`` was named at ``text[start:end]``."""

    topic: str
    start: int
    end: int


def _token_forms(doc: Doc) -> list[tuple[frozenset[str], int, int]]:
    return [(frozenset({t.lower_, t.lemma_.casefold()}), t.idx, t.idx + len(t.text)) for t in doc if not t.is_space]


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

    def find(self, texts: Sequence[str]) -> list[list[KeywordHit]]:
        """Hits per text, in text order."""
        if not self._phrases:
            return [[] for _ in texts]
        return [self._find_in(doc) for doc in self._nlp.pipe(list(texts), disable=list(_UNUSED_PIPES))]

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
