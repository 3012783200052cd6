"""Building Presidio analyzers: the spaCy model once per process, and recognizers
that never touch the network.

The NLP engine (the spaCy model, ~0.6 s to load) is shared by every PII guard
in the process; each guard gets its own recognizer registry, since policies
add their own patterns and deny lists. The engine (``nlp.PiiNlpEngine``) runs
only the spaCy components whose output a recognizer reads, where it reads it.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Sequence
from typing import Literal

import tldextract
from presidio_analyzer import AnalyzerEngine, EntityRecognizer, RecognizerRegistry
from presidio_analyzer.nlp_engine import NlpEngine, NoOpNlpEngine
from presidio_analyzer.predefined_recognizers import EmailRecognizer

from guardproxy.guards.pii.context import ContextEnhancer
from guardproxy.guards.pii.defaults import SPACY_MODELS
from guardproxy.guards.pii.nlp import PiiNlpEngine

NlpMode = Literal["ner", "pattern"]

log = logging.getLogger("guardproxy.guards.pii")
_lock = threading.Lock()


class OfflineEmailRecognizer(EmailRecognizer):
    """Presidio's email recognizer validates domains with ``tldextract.extract``,
    which fetches the public-suffix list from the internet on first use. This one
    uses the snapshot inside the tldextract package instead."""

    _extract = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)

    def validate_result(self, pattern_text: str) -> bool:
        return bool(self._extract(pattern_text).fqdn)


@functools.cache
def shared_nlp_engine(mode: NlpMode, language: str) -> NlpEngine:
    """One loaded NLP engine per (mode, language) in this process."""
    with _lock:
        if mode == "pattern":
            engine: NlpEngine = NoOpNlpEngine(models=[{"lang_code": language, "model_name": "no_op"}])
        else:
            model = SPACY_MODELS.get(language)
            if model is None:
                raise ValueError(f"no spaCy model is shipped for language {language!r}")
            engine = PiiNlpEngine(models=[{"lang_code": language, "model_name": model}])
        engine.load()
        log.info("PII NLP engine loaded: %s/%s", mode, language)
        return engine


def build_analyzer(
    mode: NlpMode, language: str, extra: Sequence[EntityRecognizer], remove: Sequence[str] = ()
) -> AnalyzerEngine:
    """An analyzer with Presidio's predefined recognizers, minus ``remove`` (by
    recognizer name) and the network-bound email recognizer, plus ``extra``.

    Keeping Presidio's ``SpacyRecognizer`` (the stock baseline of ``benchmarks/pii_quality.py``)
    keeps Presidio's own engine too: that recognizer reports spaCy's entities exactly as the full
    pipeline makes them, parser included, while ``PiiNlpEngine`` was validated with the guard's
    ``ContextualNerRecognizer``. Both share the one loaded model.
    """
    engine = shared_nlp_engine(mode, language)
    if isinstance(engine, PiiNlpEngine) and "SpacyRecognizer" not in remove:
        engine = engine.full_pipeline()
    # Presidio warns once per recognizer of every other language it skips; that is not news.
    logging.getLogger("presidio-analyzer").setLevel(logging.ERROR)
    registry = RecognizerRegistry(supported_languages=[language])
    registry.load_predefined_recognizers(languages=[language], nlp_engine=engine)
    for name in {"EmailRecognizer", *remove}:
        registry.remove_recognizer(name)
    registry.add_recognizer(OfflineEmailRecognizer(supported_language=language))
    for recognizer in extra:
        registry.add_recognizer(recognizer)
    # Presidio warns that a lemma enhancer has no lemmas to read under the no-op engine; it then keeps its default.
    enhancer = ContextEnhancer() if isinstance(engine, PiiNlpEngine) else None
    return AnalyzerEngine(registry=registry, nlp_engine=engine, supported_languages=[language],
                          context_aware_enhancer=enhancer)
