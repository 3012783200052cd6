"""Bounded label values: model names and capped sets."""

from __future__ import annotations

import pytest

from guardproxy.telemetry.facade import Telemetry
from guardproxy.telemetry.labels import LabelCap, normalise_model


@pytest.mark.parametrize(("model", "label"), [
    ("gpt-4o-2024-08-06", "gpt-4o"),
    ("GPT-4o-mini", "gpt-4o-mini"),
    ("claude-3-5-sonnet-20241022", "claude-3-5-sonnet"),
    ("gpt-3.5-turbo-0125", "gpt-3.5-turbo"),
    ("llama-3-8192", "llama-3-8192"),
    ("", "none"),
    (None, "none"),
    ("x" * 500, "x" * 64),
])
def test_model_names_are_normalised(model: str | None, label: str) -> None:
    assert normalise_model(model) == label


def test_cap_passes_the_first_values_then_other() -> None:
    cap = LabelCap(2)
    assert [cap(v) for v in ("a", "b", "c", "a", "d", "b")] == ["a", "b", "other", "a", "other", "b"]


def test_model_label_is_capped_at_fifty() -> None:
    telemetry = Telemetry.disabled()
    labels = {telemetry.model_label(f"model-{i}") for i in range(80)}
    assert len(labels) == 51 and "other" in labels
    assert telemetry.model_label("model-3-2024-01-01") == "model-3"  # already seen, after normalising

