"""`POST /v1/moderations`: the OpenAI moderation response shape from a fixed word rule.

A category scores 0.92 when one of its trigger words (below) occurs as a word
in the input, case-insensitively, else 0.0002; `flagged` is true when any
category is. That is enough for tests to tell a flagged input from a clean one
and to check which category a guard reports. `model` is optional, as in the
real API (`omni-moderation-latest` when absent).
"""

from __future__ import annotations

import re
import secrets

from starlette.responses import JSONResponse, Response

from guardproxy.demo.endpoint import DemoCall
from guardproxy.demo.errors import invalid_parameter_error

DEFAULT_MODEL = "omni-moderation-latest"
CATEGORIES = (
    "harassment", "harassment/threatening", "hate", "hate/threatening", "illicit", "illicit/violent",
    "self-harm", "self-harm/intent", "self-harm/instructions", "sexual", "sexual/minors", "violence",
    "violence/graphic",
)
TRIGGERS: dict[str, tuple[str, ...]] = {
    "hate": ("vermin", "subhuman"),
    "harassment": ("idiot", "moron", "worthless"),
    "violence": ("massacre", "slaughter"),
}
HIT_SCORE = 0.92
MISS_SCORE = 0.0002
_PATTERNS = {category: re.compile(r"\b(?:" + "|".join(words) + r")\b", re.IGNORECASE)
             for category, words in TRIGGERS.items()}


def moderation_result(text: str) -> dict[str, object]:
    """One entry of `results` for one input text."""
    hits = {category for category, pattern in _PATTERNS.items() if pattern.search(text)}
    return {
        "flagged": bool(hits),
        "categories": {category: category in hits for category in CATEGORIES},
        "category_scores": {category: HIT_SCORE if category in hits else MISS_SCORE for category in CATEGORIES},
        "category_applied_input_types": {category: ["text"] for category in CATEGORIES},
    }


def _inputs(call: DemoCall) -> list[str]:
    value = call.required("input")
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value and all(isinstance(item, str) for item in value):
        return list(value)
    raise invalid_parameter_error("input", "Invalid value for 'input': expected a string or an array of strings.")


async def moderations(call: DemoCall) -> Response:
    texts = _inputs(call)
    model = call.body.get("model", DEFAULT_MODEL)
    if not isinstance(model, str) or not model:
        raise invalid_parameter_error("model", "Invalid type for 'model': expected a string.")
    return JSONResponse({
        "id": "modr-" + secrets.token_hex(12),
        "model": model,
        "results": [moderation_result(text) for text in texts],
    })
