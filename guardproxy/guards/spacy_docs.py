"""One tokenized spaCy ``Doc`` per text, shared by the guards that parse it with the same pipeline.

What each guard runs of the spaCy model (``en_core_web_sm``, loaded once by the PII guard's
engine and reached by the others through ``nlp[language]``):

- PII (``pii/nlp.py``): the tokenizer on each whole segment text, then on that ``Doc`` the NER
  component, and the tagging components for an all-lower-case text, in place.
- topics keywords (``topics/lemmas.py``): the tokenizer on each whole segment text, to find the
  tokens that may start a keyword; then the tagging components on short pieces of text around
  them, which are new texts.
- grounding (``grounding/signals.py``): the whole pipeline (the parser gives sentences) on each
  claim, a sentence of the answer, and on the context passages: texts no other guard parses, with
  a pipeline no other guard runs, so nothing of it is shared here.

So the pipeline in common is the tokenizer, on the same segment texts: ``shared_doc`` returns
the same tokenized ``Doc`` to both, and a request that runs PII and topics keywords over a text
tokenizes it once. Components a guard runs on the shared ``Doc`` annotate it in place (PII's NER
sets entities, under its engine's lock); a guard that reads it must read only what the tokenizer
gives (token texts and offsets) or annotations it set itself, and must not retokenize it.

The cache is a small LRU keyed by (pipeline, text), not a per-request object: the guards of a
request scan its texts in pool threads within milliseconds of each other, and the PII engine is
called by Presidio, which passes no request along. It is bounded by entries and by characters,
so long texts do not pin memory; a text longer than ``MAX_CACHED_CHARS`` is never kept.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from spacy.language import Language
    from spacy.tokens import Doc

MAX_CACHED_DOCS = 64
MAX_CACHED_CHARS = 200_000


class SharedDocs:
    """A bounded LRU of (pipeline, text) -> tokenized ``Doc``. Thread-safe."""

    def __init__(self, max_docs: int = MAX_CACHED_DOCS, max_chars: int = MAX_CACHED_CHARS) -> None:
        self._max_docs = max_docs
        self._max_chars = max_chars
        self._docs: OrderedDict[tuple[Language, str], Doc] = OrderedDict()  # the key holds the pipeline
        self._chars = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._docs)

    def tokenized(self, nlp: Language, text: str) -> Doc:
        key = (nlp, text)
        with self._lock:
            doc = self._docs.get(key)
            if doc is not None:
                self._docs.move_to_end(key)
                return doc
        doc = nlp.make_doc(text)  # outside the lock: two threads may both tokenize a new text, harmlessly
        if len(text) > self._max_chars or self._max_docs == 0 or _in_zone(nlp):
            return doc  # a Doc made in a memory zone is invalid once the zone ends: never kept
        with self._lock:
            if key not in self._docs:
                self._docs[key] = doc
                self._chars += len(text)
                while len(self._docs) > self._max_docs or self._chars > self._max_chars:
                    (_, old_text), _ = self._docs.popitem(last=False)
                    self._chars -= len(old_text)
            return self._docs[key]


_SHARED = SharedDocs()

def _in_zone(nlp: Language) -> bool:
    # spaCy 3.8's Vocab (untyped in its stubs); a pipeline-like object without one is never in a zone
    return bool(getattr(getattr(nlp, "vocab", None), "in_memory_zone", False))


# Every thread that runs a loaded spaCy pipeline holds this while it does (``transient_strings``).
SPACY_LOCK = threading.RLock()


@contextmanager
def transient_strings(nlp: Language) -> Iterator[None]:
    """Run spaCy on request text without growing its vocabulary for good.

    spaCy adds every new token string (an email, an order number, a name) to the pipeline's
    ``StringStore`` and lexeme table and never drops it: a long-running proxy's memory grows with
    every distinct token it has seen (``benchmarks/soak.py``). In a memory zone those entries are
    dropped when the zone ends. Zones are process-wide state of the vocabulary, so the zone is
    held under ``SPACY_LOCK``: no other thread may use the pipeline meanwhile. Results must be
    read into plain Python objects before the block ends; Docs made in it are invalid after.
    """
    with SPACY_LOCK:
        if _in_zone(nlp):  # nested in this thread: the outer zone drops the strings
            yield
            return
        with nlp.memory_zone():
            yield


def shared_doc(nlp: Language, text: str) -> Doc:
    """``nlp.make_doc(text)``, the same ``Doc`` for every guard that asks while it is cached."""
    return _SHARED.tokenized(nlp, text)
