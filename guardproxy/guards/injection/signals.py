"""Structural signals of an injection: the wording a classifier on embeddings alone may miss.

Each signal is a family of patterns, English and German, that says something about intent
rather than topic: an attempt to override earlier instructions, a request for the system
prompt, words addressed to "the AI", persona framing, talk of removing restrictions, fake
role or system markers, hidden markup, links that carry data out, encoded payloads. The
head (``head.py``) learns how much each one weighs; the guard also uses the persona and
restriction signals to tell a jailbreak from a plain instruction override.

Patterns avoid nested unbounded repetition so that matching stays linear in the text.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

_I = re.IGNORECASE
_GAP = r"(?:[\w'-]+\s+){0,4}?"  # up to four words between the parts of a phrase

_NOT = r"(?<!\bnot )(?<!n't )(?<!\bnever )(?<!\bnicht )"  # "don't ignore the previous instructions" is advice
_OVERRIDE = re.compile(
    _NOT + r"\b(?:ignore|disregard|forget|skip|override|bypass|abandon|drop)\s+" + _GAP
    + r"(?:previous|prior|preceding|above|earlier|former|initial|original|system|all|any|your|those|these)\s+"
    + _GAP + r"(?:instructions?|prompts?|rules|directions|guidelines|commands?|context|tasks?|thoughts|orders)\b"
    r"|\bnew\s+(?:instructions?|task|rules|directive)\s*[:!]"
    r"|\bfrom\s+now\s+on\b|\binstead,?\s+(?:you|just)\b|\bstop\s+(?:everything|what\s+you)"
    r"|\b(?:ignorier\w*|vergiss|vergessen\s+sie|missacht\w*|überschreib\w*)\s+" + _GAP
    + r"(?:vorherigen|bisherigen|obigen|alle[ns]?|deine|ihre|die|den|das)\b"
    r"|\bab\s+(?:jetzt|sofort)\b|\bneue\s+(?:anweisung|aufgabe|regel)\w*|\bvergiss\s+alles\b", _I)
_REVEAL = re.compile(
    r"\b(?:reveal|show|print|repeat|output|display|tell\s+me|give\s+me|share|spell\s+out|leak|write\s+out)\s+"
    + _GAP + r"(?:system\s+prompt|initial\s+prompt|hidden\s+prompt|prompt\s+above|instructions\s+above|"
    r"original\s+instructions|your\s+instructions|your\s+prompt|secret\s+(?:key|password)|password)\b"
    r"|\bwhat\s+(?:is|was|are|were)\s+(?:your|the)\s+(?:system\s+prompt|initial\s+instructions|instructions)\b"
    r"|\b(?:zeig\w*|gib|nenne?|verrate?|wiederhole?|ausgeben)\s+" + _GAP
    + r"(?:system-?prompt|anweisungen|instruktionen|passwort|prompt)\b", _I)
_ADDRESSED = re.compile(
    r"\b(?:dear|hey|hi|attention|note\s+to|message\s+(?:to|for)|instructions?\s+(?:to|for)|if\s+you\s+are|"
    r"as\s+an?|you,?\s+the|to\s+the)\s+(?:ai|a\.i\.|assistant|language\s+model|llm|chatbot|model|bot|gpt|chatgpt|"
    r"copilot|agent|ki|assistent(?:en)?|sprachmodell)\b"
    r"|\b(?:ai|llm|gpt)\s+(?:assistant|agent|model)s?\b|\b(?:an\s+die|liebe[rs]?)\s+(?:ki|assistent\w*)\b", _I)
_PERSONA = re.compile(
    r"\b(?:act|acting|behave|respond|answer|reply)\s+(?:as|like)\b|\bpretend\b|\broleplay|\brole-play|\brole\s+of\b"
    r"|\byou\s+(?:are|will\s+be|'re)\s+(?:now|going\s+to\s+(?:act|be|pretend))\b|\bstay\s+in\s+character\b"
    r"|\bin\s+character\b|\bsimulat\w+|\bhypothetical\w*\b|\bimagine\s+(?:you|that)\b|\bpersona\b"
    r"|\btu\s+so\s+als\b|\bspiel\w*\s+(?:die|eine)\s+rolle\b|\bdu\s+bist\s+(?:jetzt|nun|ab\s+sofort)\b"
    r"|\bstell\s+dir\s+vor\b|\bschauspieler\w*\b", _I)
_UNRESTRICTED = re.compile(
    r"\b(?:no|without|free\s+(?:of|from)|any|bypass\w*|ignor\w*|break\w*)\s+" + _GAP
    + r"(?:restrictions?|limits?|limitations?|filters?|filtering|censorship|guidelines|rules|morals?|morality|"
    r"ethics|boundaries|constraints|policy|policies)\b"
    r"|\b(?:unfiltered|uncensored|unrestricted|unethical|amoral|immoral|jailbr\w+|jailbroken)\b"
    r"|\bdo\s+anything\s+now\b|\bDAN\b|\bdeveloper\s+mode\b|\bdev\s+mode\b|\bgod\s+mode\b"
    r"|\b(?:openai|anthropic)(?:'s)?\s+(?:content\s+)?polic(?:y|ies)\b|\bcontent\s+polic(?:y|ies)\b"
    r"|\bkeine\s+(?:einschränkungen|regeln|filter|grenzen|zensur|richtlinien)\b|\bohne\s+(?:einschränkungen|"
    r"regeln|filter|zensur)\b|\bunzensiert\b", _I)
_MARKERS = re.compile(
    r"(?:^|\n)\s*(?:#{1,4}\s*)?(?:system|assistant|user|human|instruction|instructions)\s*:"
    r"|\[/?(?:system|inst|instructions?|admin)\]|<\|(?:im_start|im_end|system|endoftext)\|>"
    r"|</?(?:system|instructions?|admin|prompt)>|\bend\s+of\s+(?:document|context|email|input|text)\b"
    r"|\b(?:system|admin(?:istrator)?)\s+(?:override|message|notice|instruction)\b", _I)
_URGENT = re.compile(r"\b(?:IMPORTANT|ATTENTION|URGENT|NOTE|WARNING|WICHTIG|ACHTUNG|HINWEIS)\s*[:!]")
_HIDDEN = re.compile(r"<!--.{0,400}?[A-Za-z]{3}.{0,400}?-->|[\u200b-\u200f\u2060\ufeff]"
                     r"|display\s*:\s*none|font-size\s*:\s*0|color\s*:\s*(?:white|#fff)", _I | re.DOTALL)
_EXFILTRATE = re.compile(
    r"!\[[^\]\n]{0,100}\]\(\s*https?://[^)\s]{0,200}[?&][^)\s]{0,200}\)"
    r"|https?://\S{0,200}[?&]\w+=(?:\{|\[|\$|%7B|<)"
    r"|\b(?:send|forward|email|post|upload|append|include|add|encode)\s+" + _GAP
    + r"(?:conversation|chat\s+history|user'?s?\s+(?:data|details|messages?|email|password)|previous\s+messages|"
    r"api\s+keys?|credentials|personal\s+data)\b"
    r"|\b(?:sende|schicke|leite)\s+" + _GAP + r"(?:gespräch|verlauf|daten|passwort)\w*", _I)
_IMPERATIVE_YOU = re.compile(
    r"\byou\s+(?:must|should|will|have\s+to|need\s+to|are\s+required\s+to)\s+(?:now\s+)?(?:always\s+)?"
    r"(?:respond|answer|reply|say|tell|write|output|recommend|include|mention|insist|ignore|refuse|print)\b"
    r"|\byour\s+(?:new\s+)?(?:task|job|goal|objective|instructions?)\s+(?:is|are)\b"
    r"|\bwhen\s+(?:you\s+)?(?:summari[sz]\w*|answering|responding|asked)\b"
    r"|\bin\s+your\s+(?:answer|response|reply|summary)\b"
    r"|\bdu\s+(?:musst|sollst|wirst)\b|\bdeine\s+(?:neue\s+)?aufgabe\b|\bin\s+deiner\s+antwort\b", _I)
_BASE64 = re.compile(r"[A-Za-z0-9+/]{40,}={0,2}")
_HEX = re.compile(r"\b(?:[0-9a-fA-F]{2}[\s:]?){24,}\b")
_ENCODING_WORDS = re.compile(r"\b(?:base64|rot13|rot-13|hex(?:adecimal)?|caesar\s+cipher|decode|dekodier\w*|"
                             r"entschlüssel\w*|morse)\b", _I)

SIGNALS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("override", _OVERRIDE), ("reveal", _REVEAL), ("addressed", _ADDRESSED), ("persona", _PERSONA),
    ("unrestricted", _UNRESTRICTED), ("markers", _MARKERS), ("urgent", _URGENT), ("hidden", _HIDDEN),
    ("exfiltrate", _EXFILTRATE), ("imperative_you", _IMPERATIVE_YOU), ("encoding_words", _ENCODING_WORDS),
)
NAMES: tuple[str, ...] = (*(name for name, _ in SIGNALS), "encoded_payload")
JAILBREAK_SIGNALS = ("persona", "unrestricted")

Signals = npt.NDArray[np.float64]


def encoded_payload(text: str) -> bool:
    """A long run that decodes as base64 to mostly printable text, or a long hex byte string."""
    for match in _BASE64.finditer(text):
        run = match.group()
        try:
            decoded = base64.b64decode(run + "=" * (-len(run) % 4), validate=False)
        except (binascii.Error, ValueError):
            continue
        printable = sum(32 <= b < 127 or b in (9, 10, 13) for b in decoded)
        if decoded and printable / len(decoded) > 0.9:
            return True
    return _HEX.search(text) is not None


def signal_vector(text: str) -> Signals:
    """One 0/1 entry per name in ``NAMES``."""
    values = [1.0 if pattern.search(text) else 0.0 for _, pattern in SIGNALS]
    values.append(1.0 if encoded_payload(text) else 0.0)
    return np.asarray(values, dtype=np.float64)


def signal_matrix(texts: Sequence[str]) -> Signals:
    """``signal_vector`` of each text, as rows."""
    if not texts:
        return np.zeros((0, len(NAMES)), dtype=np.float64)
    return np.vstack([signal_vector(text) for text in texts])


def is_jailbreak(signals: Signals) -> bool:
    """Persona framing or talk of removing restrictions: a jailbreak rather than a plain override."""
    return any(signals[NAMES.index(name)] > 0 for name in JAILBREAK_SIGNALS)
