"""The recognizer of a policy's own ``patterns``: Presidio's pattern recognizer, matching with a policy regex.

Presidio's ``PatternRecognizer`` matches with the backtracking ``regex`` module, and when a
search passes its timeout (60 s by default) it logs a warning and finds nothing. A custom
pattern comes from a policy and runs on the client's text, so this recognizer matches with
``regex_safety`` instead: RE2 (linear time) by default, or, for ``engine: python``, the
``regex`` module under the guard's ``regex_timeout_ms``, past which the scan fails as a guard
error (``on_error``) rather than silently finding nothing. Everything else is Presidio's:
the same flags, scores, validation hooks, explanation and metadata on each result, and
context words scored by the analyzer.
"""

from __future__ import annotations

from typing import Any, cast

from presidio_analyzer import EntityRecognizer, Pattern, PatternRecognizer, RecognizerResult

from guardproxy.guards.pii.config import PATTERN_FLAGS, CustomPattern


class PolicyPatternRecognizer(PatternRecognizer):
    def __init__(self, pattern: CustomPattern, language: str, timeout_ms: int) -> None:
        self._pattern = Pattern(pattern.name, pattern.regex, pattern.score)
        self._name = f"policy:{pattern.name}"
        super().__init__(supported_entity=pattern.name, name=self._name, context=list(pattern.context),
                         patterns=[self._pattern], supported_language=language, global_regex_flags=PATTERN_FLAGS)
        self._compiled = pattern.compiled(timeout_ms)

    def analyze(self, text: str, entities: list[str], nlp_artifacts: Any = None,
                regex_flags: int | None = None) -> list[RecognizerResult]:
        """What ``PatternRecognizer.analyze`` returns for the one pattern, found by the policy regex."""
        pattern, results = self._pattern, []
        for start, end in self._compiled.spans(text):
            validation = self.validate_result(text[start:end])
            explanation = self.build_regex_explanation(self._name, pattern.name, pattern.regex, pattern.score,
                                                       cast(bool, validation), PATTERN_FLAGS)  # None, as Presidio
            result = RecognizerResult(
                entity_type=self.supported_entities[0], start=start, end=end, score=pattern.score,
                analysis_explanation=explanation,
                recognition_metadata={RecognizerResult.RECOGNIZER_NAME_KEY: self._name,
                                      RecognizerResult.RECOGNIZER_IDENTIFIER_KEY: self.id},
            )
            if validation is not None:
                result.score = EntityRecognizer.MAX_SCORE if validation else EntityRecognizer.MIN_SCORE
            if self.invalidate_result(text[start:end]):
                result.score = EntityRecognizer.MIN_SCORE
            if result.score > EntityRecognizer.MIN_SCORE:
                results.append(result)
            explanation.score = result.score
        return list(EntityRecognizer.remove_duplicates(results))
