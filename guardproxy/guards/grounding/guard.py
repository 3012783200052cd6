"""The grounding guard: a finding per answer sentence (claim) the context does not support.

Runs on the output stage. The context comes from ``context_from`` (see
``sources``); with no context at all the guard returns nothing (the proxy
records that the answer could not be checked). ``signals`` scores each claim
with the combiner's P(unsupported); ``llm`` asks a judge model and scores 1.0 or
0.0. A finding (label ``unsupported_claim``, the claim's span) fires when the
score reaches ``threshold``. Text a tool call carries (``Segment.call``) is data
for a tool, not claims, and is skipped.
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Sequence
from typing import ClassVar

from guardproxy.guards.api import (
    CachedEncoder,
    Finding,
    GuardConfig,
    GuardContext,
    GuardKind,
    Segment,
    UpstreamClient,
    shared_encoder,
)
from guardproxy.guards.grounding.claims import Claim, split_claims
from guardproxy.guards.grounding.combiner import Combiner, load_combiner
from guardproxy.guards.grounding.config import GroundingConfig
from guardproxy.guards.grounding.judge import judge_request, parse_judgement
from guardproxy.guards.grounding.nli import load_head
from guardproxy.guards.grounding.signals import SignalExtractor
from guardproxy.guards.grounding.sources import context_passages

LABEL = "unsupported_claim"


class NoUpstreamError(RuntimeError):
    """``method: llm`` ran where no upstream is reachable (e.g. ``guardproxy eval``)."""


class GroundingGuard:
    Config: ClassVar[type[GuardConfig]] = GroundingConfig

    @property
    def kind(self) -> GuardKind:
        """The offline signals run in the guard pool; ``method: llm`` waits on the judge."""
        return "io" if self.config.method == "llm" else "cpu"

    def __init__(self, config: GroundingConfig) -> None:
        self.config = config
        self._combiner: Combiner | None = None
        self._extractor: SignalExtractor | None = None
        self._lock = threading.Lock()

    def _models(self) -> tuple[SignalExtractor, Combiner]:
        with self._lock:
            if self._extractor is None or self._combiner is None:
                from guardproxy.guards.pii.analyzer import shared_nlp_engine

                nlp = shared_nlp_engine("ner", self.config.language).nlp[self.config.language]  # type: ignore[attr-defined]
                encoder = CachedEncoder(shared_encoder(), self.config.cache_size)
                combiner = load_combiner()
                head = load_head() if "entailment_support" in combiner.coefficients else None
                self._extractor = SignalExtractor(nlp, encoder, min(self.config.cache_size, 256), head)
                self._combiner = combiner
            return self._extractor, self._combiner

    def warm(self) -> None:
        """Load spaCy, MiniLM, the combiner (and the entailment head if it reads it), and run them once: the first
        request pays nothing."""
        if self.config.method == "signals":
            extractor, _ = self._models()
            extractor.signals(["Warm up."], extractor.context_index(["Warm up the models."]))

    def scan(self, segments: Sequence[Segment], context: GuardContext) -> list[Finding] | Awaitable[list[Finding]]:
        """Findings, or (``method: llm``) an awaitable of the judge's."""
        passages = self._passages(context)
        if not passages:
            return []
        claims = [(index, claim) for index, segment in enumerate(segments) if not segment.call
                  for claim in split_claims(segment.text, self.config.min_claim_chars)]
        if not claims:
            return []
        texts = [segments[index].text[claim.start : claim.end] for index, claim in claims]
        if self.config.method == "llm":
            if context.upstream is None:
                raise NoUpstreamError("method: llm needs the upstream to reach the judge model; none is available here")
            return self._judged(claims, passages, texts, context.upstream)
        return self._findings(claims, self._signal_scores(passages, texts))

    def _findings(self, claims: Sequence[tuple[int, Claim]], scores: Sequence[float]) -> list[Finding]:
        return [Finding(LABEL, round(score, 4), index, claim.start, claim.end)
                for (index, claim), score in zip(claims, scores, strict=True) if score >= self.config.threshold]

    async def _judged(self, claims: Sequence[tuple[int, Claim]], passages: list[str], texts: list[str],
                      upstream: UpstreamClient) -> list[Finding]:
        assert self.config.judge_model is not None  # the config requires it for this method
        body = judge_request(self.config.judge_model, passages, texts)
        response = await upstream.post_json("/chat/completions", body, self.config.judge_timeout_ms / 1000)
        supported = parse_judgement(response, len(texts))
        return self._findings(claims, [0.0 if claim_supported else 1.0 for claim_supported in supported])

    def claim_scores(self, answer: str, passages: Sequence[str]) -> list[tuple[Claim, float]]:
        """Every claim of ``answer`` with its P(unsupported), findings or not (for benchmarks and debugging)."""
        claims = split_claims(answer, self.config.min_claim_chars)
        scores = self._signal_scores(list(passages), [answer[c.start : c.end] for c in claims])
        return list(zip(claims, scores, strict=True))

    def _passages(self, context: GuardContext) -> list[str]:
        passages = context_passages(context, self.config.context_from, self.config.delimiters)
        kept, budget = [], self.config.max_context_chars
        for passage in passages:
            if budget <= 0:
                break
            kept.append(passage[:budget])
            budget -= len(passage)
        return kept

    def _signal_scores(self, passages: list[str], texts: list[str]) -> list[float]:
        extractor, combiner = self._models()
        index = extractor.context_index(passages)
        return [combiner.probability(s.as_features()) for s in extractor.signals(texts, index)]
