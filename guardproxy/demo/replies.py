"""What the demo model says, and how it is measured and cut into stream pieces.

Replies are deterministic so tests can predict them: a header override first,
then canned answers that give the guardrails something to catch, then an echo.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from typing import Any

from guardproxy.demo.errors import DemoRequestError

REPLY_HEADER = "x-demo-reply"
REPLY_B64_HEADER = "x-demo-reply-b64"

INVESTMENT_REPLY = "Our fund offers guaranteed returns of 12% a year with no risk at all. Sign up today."
PRIVATE_KEY_REPLY = (
    "Sure, here is the deploy key:\n"
    "-----BEGIN OPENSSH PRIVATE KEY-----\n"
    "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n"
    "-----END OPENSSH PRIVATE KEY-----\n"
    "Keep it safe."
)

_CANNED_REPLIES: tuple[tuple[tuple[str, ...], str], ...] = (
    (("invest",), INVESTMENT_REPLY),
    (("private key", "ssh key"), PRIVATE_KEY_REPLY),
)

_WORDS_PER_PIECE = 2
_WORD_WITH_TRAILING_SPACE = re.compile(r"\S+\s*|\s+")


def header_reply(headers: Mapping[str, str]) -> str | None:
    """The reply forced by `x-demo-reply-b64` (UTF-8) or `x-demo-reply` (latin-1), if any."""
    encoded = headers.get(REPLY_B64_HEADER)
    if encoded is not None:
        try:
            return base64.b64decode(encoded, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError) as error:
            raise DemoRequestError(400, f"{REPLY_B64_HEADER} must be base64 of UTF-8 text: {error}") from error
    return headers.get(REPLY_HEADER)


# Chat and Messages call a text part "text"; Responses says "input_text" or "output_text".
_TEXT_PART_TYPES = frozenset({"text", "input_text", "output_text"})


def content_text(content: Any) -> str:
    """Text of a message `content`: a string, or the text parts of a parts array."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = [
            part["text"]
            for part in content
            if isinstance(part, dict) and part.get("type") in _TEXT_PART_TYPES and isinstance(part.get("text"), str)
        ]
        return " ".join(texts)
    return ""


def last_user_text(messages: list[Any]) -> str:
    """Text of the last `user` message, or "" when there is none."""
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            return content_text(message.get("content"))
    return ""


def canned_or_echo_reply(user_text: str) -> str:
    """A topic or grounding judge's answer, else the canned answer whose trigger is in `user_text`, else an echo."""
    judged = topic_judge_reply(user_text) or grounding_judge_reply(user_text)
    if judged is not None:
        return judged
    lowered = user_text.lower()
    for triggers, reply in _CANNED_REPLIES:
        if any(trigger in lowered for trigger in triggers):
            return reply
    return "You said: " + user_text


def count_tokens(text: str) -> int:
    """A rough token count: whitespace-separated words, never less than 1."""
    return max(1, len(text.split()))


def split_into_pieces(text: str) -> list[str]:
    """Cut `text` into pieces of about two words; joining them gives back `text` exactly."""
    words = _WORD_WITH_TRAILING_SPACE.findall(text)
    return ["".join(words[start : start + _WORDS_PER_PIECE]) for start in range(0, len(words), _WORDS_PER_PIECE)]


def split_fixed(text: str, size: int) -> list[str]:
    """Cut `text` into pieces of `size` characters (used for tool-call arguments)."""
    return [text[start : start + size] for start in range(0, len(text), size)]


# Topic-judge calls from `guard: topics` (method: llm) carry this key in a JSON user message.
TOPIC_JUDGE_MARKER = "guardproxy_topic_judge"


def topic_judge_reply(user_text: str) -> str | None:
    """A deterministic judge's answer, or None when `user_text` is not a judge request.

    For each text, the topics whose name or one of whose keywords appears in it
    (case-insensitive, whole words, plural "s" allowed), as `{"topics": [[...], ...]}`.
    """
    if TOPIC_JUDGE_MARKER not in user_text:
        return None
    try:
        request = json.loads(user_text)
    except json.JSONDecodeError:
        return None
    if not isinstance(request, dict) or request.get("task") != TOPIC_JUDGE_MARKER:
        return None
    topics = [t for t in request.get("topics", []) if isinstance(t, dict) and isinstance(t.get("name"), str)]
    texts = [t for t in request.get("texts", []) if isinstance(t, str)]
    answer = []
    for text in texts:
        lowered = text.lower()
        named = []
        for topic in topics:
            terms = [topic["name"].replace("_", " "), *(k for k in topic.get("keywords", []) if isinstance(k, str))]
            if any(re.search(rf"\b{re.escape(term.lower())}s?\b", lowered) for term in terms):
                named.append(topic["name"])
        answer.append(named)
    return json.dumps({"topics": answer})


# Grounding-judge calls from `guard: grounding` (method: llm) carry this key in a JSON user message.
GROUNDING_JUDGE_MARKER = "guardproxy_grounding_judge"
_CHECKED_WORD = re.compile(r"\b(?:\d[\d,.]*\d|\d|[A-Z][\w'-]*)")


def grounding_judge_reply(user_text: str) -> str | None:
    """A deterministic grounding judge's answer, or None when `user_text` is not a judge request.

    A claim is unsupported when a number or a capitalised word in it (its first
    word excepted) does not appear in the context (case-insensitive), as
    `{"supported": [true, false, ...]}`.
    """
    if GROUNDING_JUDGE_MARKER not in user_text:
        return None
    try:
        request = json.loads(user_text)
    except json.JSONDecodeError:
        return None
    if not isinstance(request, dict) or request.get("task") != GROUNDING_JUDGE_MARKER:
        return None
    context = " ".join(p for p in request.get("context", []) if isinstance(p, str)).lower()
    claims = [c for c in request.get("claims", []) if isinstance(c, str)]
    supported = []
    for claim in claims:
        words = [m.group() for m in _CHECKED_WORD.finditer(claim) if m.start() > 0 and claim[: m.start()].strip()]
        supported.append(all(word.lower() in context for word in words))
    return json.dumps({"supported": supported})
