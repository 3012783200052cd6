"""The toxicity guard: scores each sentence of each segment, reports those over the threshold.

Every window of every segment of a request is scored in one batch per signal.
A finding's span is the offending sentence (or window of a long sentence), so
a redaction removes that sentence and a streamed answer is cut before it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from typing import ClassVar

import numpy as np

from guardproxy.guards.api import Finding, GuardConfig, GuardContext, GuardKind, Segment
from guardproxy.guards.toxicity.allowlist import AllowList
from guardproxy.guards.toxicity.config import ToxicityConfig
from guardproxy.guards.toxicity.encoder import EncoderScorer
from guardproxy.guards.toxicity.head import ImplicitHead, Scores
from guardproxy.guards.toxicity.moderation import moderate
from guardproxy.guards.toxicity.profanity import ProfanityScorer
from guardproxy.guards.toxicity.windows import ScoringWindow, sentence_windows

LABEL = "toxicity"


class ToxicityGuard:
    Config: ClassVar[type[GuardConfig]] = ToxicityConfig
    cacheable = property(lambda self: self.config.detector != "moderation")  # moderation asks the upstream

    @property
    def kind(self) -> GuardKind:
        """The local models run in the guard pool; the moderation detector waits on the upstream."""
        return "io" if self.config.detector == "moderation" else "cpu"

    def __init__(self, config: ToxicityConfig) -> None:
        self.config = config
        self.threshold = config.effective_threshold()
        self._allow = AllowList(config.allow)
        self._profanity = ProfanityScorer()
        self._encoder = EncoderScorer() if config.detector == "encoder" else None
        self._head = ImplicitHead(config.cache_size) if config.implicit and self._encoder is None else None

    def warm(self) -> None:
        """Load the local models and run them once; the moderation detector has none."""
        if self.config.detector != "moderation":
            self.score(["warm up the toxicity models"])

    def score(self, texts: Sequence[str]) -> Scores:
        """Local scores of already-masked texts: the fine-tuned encoder's (``detector: encoder``),
        else profanity, averaged with the implicit head if on.

        The plain mean was the best of the combinations measured (max, weighted
        means, logit mixes) on OLID + ETHOS, which neither model was trained on.
        """
        if self._encoder is not None:
            return self._encoder.score(texts)
        profane = self._profanity.score(texts)
        if self._head is None:
            return profane
        combined: Scores = (profane + self._head.score(texts)) / 2
        return combined

    def windows(self, segments: Sequence[Segment]) -> list[tuple[int, ScoringWindow]]:
        """(segment index, window) for every segment long enough to score."""
        found: list[tuple[int, ScoringWindow]] = []
        for index, segment in enumerate(segments):
            if len(segment.text.strip()) < self.config.min_chars:
                continue
            found.extend((index, w) for w in sentence_windows(segment.text, self.config.window_chars))
        return found

    def scan(self, segments: Sequence[Segment], context: GuardContext) -> list[Finding] | Awaitable[list[Finding]]:
        """Findings from the local models, or (``detector: moderation``) an awaitable of the upstream's."""
        windows = self.windows(segments)
        if not windows:
            return []
        texts = [self._allow.mask(segments[i].text[w.start:w.end]) for i, w in windows]
        if self.config.detector == "moderation":
            return self._moderated(windows, texts, context)
        scores = self.score(texts)
        return [Finding(LABEL, float(np.round(s, 4)), i, w.start, w.end)
                for (i, w), s in zip(windows, scores, strict=True) if s >= self.threshold]

    async def _moderated(self, windows: Sequence[tuple[int, ScoringWindow]], texts: Sequence[str],
                         context: GuardContext) -> list[Finding]:
        results = await moderate(context.upstream, texts, self.config.moderation_model,
                                 self.config.moderation_timeout_ms / 1000)
        return [Finding(r.category, r.score, i, w.start, w.end)
                for (i, w), r in zip(windows, results, strict=True)
                if r.flagged or r.score >= self.threshold]
