"""Places named after the phrases that take a place ("I'm in", "travelling to", "grew up in"), in any
script or case the NER model does not know (KNIVSTA, ΛΕΥΚΩΣΙΑ)."""

from __future__ import annotations

import regex
from presidio_analyzer import RecognizerResult
from presidio_analyzer.nlp_engine import NlpArtifacts

from guardproxy.guards.pii.recognizers.addresses import PARTICLE
from guardproxy.guards.pii.recognizers.base import Recognizer, names_wanted
from guardproxy.guards.pii.recognizers.vocabulary import ORG_WORD, TIME_WORD

_PLACE_CUE = regex.compile(
    rf"(?i:\b(?:(?:I[ ]am|I'm|we[ ]are|we're|live[sd]?|living|based|located|born|raised|grew[ ]up|stay(?:ing)?)"
    r"[ ]+in|(?:travel(?:l?ing)?|moving|moved|flew|fly(?:ing)?|trip|going|went|relocat\w*|returned|returning|"
    r"arrived|arriving|coming|came|welcome|back)[ ]+(?:back[ ]+)?(?:to|at|in)|(?:originally|moved[ ]here|come|"
    r"comes|came|I[ ]am|I'm|we're|we[ ]are)[ ]+from|(?:city|town|village|capital|province|region|county|"
    rf"University)[ ]+of)[ ]+)(?P<place>\p{{Lu}}[\p{{L}}'’-]*(?:[ ](?:{PARTICLE}[ ])?\p{{Lu}}[\p{{L}}'’-]*){{0,2}})",
    regex.VERSION1)


class PlaceCueRecognizer(Recognizer):
    """Places named after "I'm in", "travelling to", "originally from", "grew up in" and the like,
    in any script or case the NER model does not know (KNIVSTA, ΛΕΥΚΩΣΙΑ)."""

    ENTITIES = ["LOCATION"]

    def analyze(self, text: str, entities: list[str], nlp_artifacts: NlpArtifacts | None = None
                ) -> list[RecognizerResult]:
        if not names_wanted(nlp_artifacts):
            return []
        return [self.result(m.start("place"), m.end("place"), 0.6) for m in _PLACE_CUE.finditer(text)
                if not TIME_WORD.match(m.group("place")) and not ORG_WORD.search(m.group("place"))]
