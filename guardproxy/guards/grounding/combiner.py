"""The combiner: a logistic regression that turns a claim's signals into P(unsupported).

Its weights are data, not code: ``data/combiner.json`` holds the feature names,
coefficients, intercept and where they came from (refit with
``python training/grounding_fit.py``). The file names the signals it reads, some or all of
``signals.FEATURES``. Features are used raw (each in [0, 1]), so a coefficient reads directly as "how much
this signal moves the log-odds".
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from guardproxy.guards.grounding.signals import FEATURES

COMBINER_PATH = Path(__file__).parent / "data" / "combiner.json"


class CombinerFileError(ValueError):
    """The combiner file does not match the signals this code computes."""


@dataclass(frozen=True, slots=True)
class Combiner:
    coefficients: dict[str, float]
    intercept: float

    def probability(self, features: Mapping[str, float]) -> float:
        logit = self.intercept + sum(weight * features[name] for name, weight in self.coefficients.items())
        if logit < 0:
            odds = math.exp(logit)
            return odds / (1 + odds)
        return 1 / (1 + math.exp(-logit))

    def to_json(self, provenance: Mapping[str, Any]) -> str:
        body = {"features": list(self.coefficients), "coefficients": [round(v, 6) for v in self.coefficients.values()],
                "intercept": round(self.intercept, 6), "provenance": dict(provenance)}
        return json.dumps(body, indent=2) + "\n"


def load_combiner(path: Path = COMBINER_PATH) -> Combiner:
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
        names, weights, intercept = body["features"], body["coefficients"], float(body["intercept"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CombinerFileError(f"{path}: not a combiner file: {exc}") from None
    if not set(names) <= set(FEATURES) or len(set(names)) != len(names) or len(weights) != len(names):
        raise CombinerFileError(f"{path}: features {names} are not among the signals {list(FEATURES)}; refit it "
                                "with python training/grounding_fit.py")
    return Combiner({name: float(w) for name, w in zip(names, weights, strict=True)}, intercept)
