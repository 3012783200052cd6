"""The spaCy pipeline as the PII guard runs it: each annotation computed when a recognizer reads it.

Presidio's ``SpacyNlpEngine`` runs the whole pipeline on every text before any recognizer
looks at it: tok2vec, tagger, parser, attribute ruler, lemmatizer and NER, about 54 ms for
2,000 characters with ``en_core_web_sm``. The guard reads three things from it:

- ``entities``: the NER component alone (it has its own tok2vec). Only
  ``ContextualNerRecognizer`` reads them, so a guard that asks for no NER type never runs it.
- ``lemmas`` and ``keywords``: only Presidio's ``LemmaContextAwareEnhancer`` reads them, for
  the few tokens before a match of a recognizer that has context words (email, IBAN, IP, SSN,
  bank numbers, policy patterns). Lemmas are computed for those tokens alone, on a slice of the
  text with ``_MARGIN`` tokens either side. The shared tok2vec is 4 layers of windows of one
  token, so a tag depends on 4 tokens either side, and the attribute ruler's longest pattern is
  two tokens: the lemmas are those of the whole text, at a fraction of the cost.
- part-of-speech tags, for an all-lower-case text only (``tagged_tokens``): the whole text is tagged.

The parser is never run. Presidio needs no dependency or sentence: the parser only moved the
NER's sentence-boundary constraint and the attribute ruler's DEP rules (AUX versus VERB). On
the 1,125 rows of ``pii_dev.jsonl`` the guard's detections are identical with and without it.

The loaded ``Language`` stays whole: the topics and grounding guards share it through
``nlp[language]``, and grounding reads the parser's sentences of its context.

spaCy refuses a text longer than ``nlp.max_length`` (error E088). Texts reach this engine
in pieces of at most ``sentences.PIECE_CHARS`` characters, cut at sentence ends
(``detection.analyze_batch``), so a message of any length is analysed.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, cast, overload

from presidio_analyzer.nlp_engine import NlpArtifacts, SpacyNlpEngine
from spacy.language import Language
from spacy.pipeline import Pipe
from spacy.tokens import Doc, Span

from guardproxy.guards.spacy_docs import shared_doc

# The components that give tokens their lemmas and tags, in pipeline order.
_TAGGING = ("tok2vec", "tagger", "attribute_ruler", "lemmatizer")
_MARGIN = 5  # tokens either side of a slice tagged alone: 4 for tok2vec's windows, 1 for two-token rules
_CHUNK = 16  # lemmas computed before a match: Presidio walks back until 6 words that are no stop words


class PiiNlpEngine(SpacyNlpEngine):
    """A ``SpacyNlpEngine`` whose artifacts compute entities, lemmas and tags on first use.

    Pipeline components run under one lock: they are not documented as thread-safe, and the
    lazy artifacts run them while Presidio's recognizers read them.
    """

    def __init__(self, models: list[dict[str, str]]) -> None:
        super().__init__(models=models)
        self._lock = threading.Lock()

    def process_text(self, text: str, language: str) -> LazyNlpArtifacts:
        return LazyNlpArtifacts(self, shared_doc(self._language(language), text), language)

    # NlpEngine's contract (SpacyNlpEngine's own signature, with ``as_tuples``, departs from it).
    def process_batch(  # type: ignore[override]
        self, texts: Iterable[str], language: str, batch_size: int = 1, n_process: int = 1, **kwargs: Any,
    ) -> Iterator[tuple[str, NlpArtifacts]]:
        """Texts are tokenized here, and analysed when their artifacts are read."""
        for text in texts:
            yield str(text), self.process_text(str(text), language)

    def full_pipeline(self) -> SpacyNlpEngine:
        """Presidio's own engine on the same loaded model: every component on every text."""
        engine = SpacyNlpEngine(models=self.models, ner_model_configuration=self.ner_model_configuration)
        engine.nlp = self.nlp
        return engine

    def _language(self, language: str) -> Language:
        if not self.nlp:
            raise ValueError("NLP engine is not loaded. Consider calling .load()")
        nlp: Language = self.nlp[language]
        return nlp

    def entities(self, doc: Doc, language: str) -> tuple[list[Span], list[float]]:
        """The NER model's entities in ``doc``, mapped and scored as Presidio's engine does."""
        with self._lock:
            self._language(language).get_pipe("ner")(doc)
        found = list(doc.ents)
        mapped: tuple[list[Span], list[float]] = self._get_updated_entities(found, self._get_scores_for_entities(doc))
        return mapped

    def tag(self, docs: Sequence[Doc], language: str) -> None:
        """Run the tagging components over ``docs`` in place, as one batch (tags, POS, morphology, lemmas)."""
        nlp = self._language(language)
        with self._lock:
            for name in _TAGGING:
                if name in nlp.pipe_names:
                    component = cast(Pipe, nlp.get_pipe(name))
                    docs = list(component.pipe(docs, batch_size=max(1, len(docs))))

    def lemmas(self, doc: Doc, spans: Sequence[tuple[int, int]], language: str) -> list[list[str]]:
        """The lemmas of each ``doc[start:end]``, tagging only those slices and ``_MARGIN`` tokens around each."""
        bounds = [(max(0, start - _MARGIN), min(len(doc), end + _MARGIN)) for start, end in spans]
        pieces = [doc[low:high].as_doc() for low, high in bounds]
        self.tag(pieces, language)
        return [[token.lemma_ for token in piece[start - low:end - low]]
                for piece, (low, _), (start, end) in zip(pieces, bounds, spans, strict=True)]


class _LazyLemmas(Sequence[str]):
    """``lemmas[i]`` of a document, computed the first time they are read (``prefetch`` batches them)."""

    def __init__(self, engine: PiiNlpEngine, doc: Doc, language: str) -> None:
        self._engine = engine
        self._doc = doc
        self._language = language
        self._known: list[str | None] = [None] * len(doc)

    def __len__(self) -> int:
        return len(self._known)

    @overload
    def __getitem__(self, index: int) -> str: ...

    @overload
    def __getitem__(self, index: slice) -> list[str]: ...

    def __getitem__(self, index: int | slice) -> str | list[str]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        index = range(len(self))[index]  # IndexError and negative indices as a list has them
        if self._known[index] is None:
            self.prefetch(range(max(0, index - _CHUNK + 1), index + 1))
        known = self._known[index]
        assert known is not None
        return known

    def prefetch(self, indices: Iterable[int]) -> None:
        """Compute the lemmas at ``indices`` not known yet, in one batch of slices."""
        wanted = sorted({i for i in indices if 0 <= i < len(self) and self._known[i] is None})
        spans: list[tuple[int, int]] = []
        for index in wanted:
            if spans and index <= spans[-1][1] + 2 * _MARGIN:  # close enough to share the margins
                spans[-1] = (spans[-1][0], index + 1)
            else:
                spans.append((index, index + 1))
        if not spans:
            return
        for (start, end), lemmas in zip(spans, self._engine.lemmas(self._doc, spans, self._language), strict=True):
            self._known[start:end] = lemmas


class _LazyKeywords:
    """Membership in Presidio's ``NlpArtifacts.keywords`` without lemmatising the whole text.

    Presidio's keywords are the lower-cased lemmas that are no stop word, no punctuation and not
    "be", each split on ":". Stop words ignore case and punctuation has none, so a lemma ``word``
    without ":" is a keyword exactly when it passes that filter itself; it may also be a piece of
    another token's lemma with ":" in it. Lemmas hold ":" only where the token's text does, so
    those tokens are lemmatised (all at once, on the first question) and their pieces kept.
    """

    def __init__(self, engine: PiiNlpEngine, doc: Doc, lemmas: _LazyLemmas, language: str) -> None:
        self._engine = engine
        self._doc = doc
        self._lemmas = lemmas
        self._language = language
        self._pieces: set[str] | None = None

    def _is_keyword(self, lemma: str) -> bool:
        engine, language = self._engine, self._language
        return not (engine.is_stopword(lemma, language) or engine.is_punct(lemma, language)
                    or lemma in ("-PRON-", "be"))

    def colon_tokens(self) -> list[int]:
        """The tokens whose lemma may hold ":" and be a keyword: their text has ":" and is not all punctuation."""
        return [token.i for token in self._doc if ":" in token.text and not token.is_punct]

    def _colon_pieces(self) -> set[str]:
        if self._pieces is None:
            lemmas = [self._lemmas[i] for i in self.colon_tokens()]
            self._pieces = {piece for lemma in lemmas if self._is_keyword(lemma) for piece in lemma.lower().split(":")}
        return self._pieces

    def __contains__(self, word: object) -> bool:
        """Exact for the words Presidio asks about: the lower-cased lemmas of this text's tokens."""
        if not isinstance(word, str):
            return False
        return (":" not in word and self._is_keyword(word)) or word in self._colon_pieces()

    def __iter__(self) -> Iterator[str]:
        """Every keyword in text order, as Presidio lists them (this reads every lemma)."""
        for lemma in self._lemmas:
            if self._is_keyword(lemma):
                yield from lemma.lower().split(":")


class LazyNlpArtifacts(NlpArtifacts):
    """Presidio's ``NlpArtifacts`` for one text, filled in as recognizers read them.

    ``tokens`` and ``tokens_indices`` are there from the start; ``entities``/``scores`` run the
    NER model on first read; ``lemmas``/``keywords`` lemmatise only the tokens asked about.
    """

    def __init__(self, engine: PiiNlpEngine, doc: Doc, language: str) -> None:
        # NlpArtifacts.__init__ would compute every keyword eagerly; set its attributes instead.
        self._engine = engine
        self._doc = doc
        self.tokens = doc
        self.tokens_indices = [token.idx for token in doc]
        self.nlp_engine = engine
        self.language = language
        self._lemmas = _LazyLemmas(engine, doc, language)
        self._keywords = _LazyKeywords(engine, doc, self._lemmas, language)
        # Presidio declares lists; it only takes len(), [i] and ``in`` of them.
        self.lemmas = self._lemmas  # type: ignore[assignment]
        self.keywords = self._keywords  # type: ignore[assignment]
        self._found: tuple[list[Span], list[float]] | None = None
        self._tagged = False

    def _entities_and_scores(self) -> tuple[list[Span], list[float]]:
        if self._found is None:
            self._found = self._engine.entities(self._doc, self.language)
        return self._found

    @property
    def entities(self) -> list[Span]:
        return self._entities_and_scores()[0]

    @entities.setter
    def entities(self, entities: list[Span]) -> None:
        self._found = (entities, self.scores)

    @property
    def scores(self) -> list[float]:
        return self._entities_and_scores()[1]

    @scores.setter
    def scores(self, scores: list[float]) -> None:
        self._found = (self.entities, scores)

    def tagged(self) -> Doc:
        """The document with tags, part of speech and lemmas on every token (tags the whole text)."""
        if not self._tagged:
            self._engine.tag([self._doc], self.language)
            self._tagged = True
        return self._doc

    def prefetch_context(self, starts: Iterable[int]) -> None:
        """Lemmatise, in one batch, the words Presidio reads before matches starting at ``starts``
        (and the tokens whose lemmas hold ":", which decide some keywords)."""
        indices: set[int] = set()
        for start in starts:
            index = bisect.bisect_right(self.tokens_indices, start)  # the token after the one holding ``start``
            indices.update(range(max(0, index - _CHUNK), index + 1))
        if indices:
            indices.update(self._keywords.colon_tokens())
            self._lemmas.prefetch(indices)


def tagged_tokens(nlp_artifacts: NlpArtifacts) -> Doc:
    """``nlp_artifacts.tokens`` with part-of-speech tags, whichever engine made them."""
    if isinstance(nlp_artifacts, LazyNlpArtifacts):
        return nlp_artifacts.tagged()
    tokens: Doc = nlp_artifacts.tokens
    return tokens
