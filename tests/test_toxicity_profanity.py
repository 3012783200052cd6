"""guardproxy/guards/toxicity/profanity.py: the exported model is the wheel's, scored as the wheel scores it.

The wheel (alt-profanity-check, with scikit-learn) is in the ``train`` extra, which the ``test`` extra includes."""

from __future__ import annotations

import sys

import numpy as np

from guardproxy.guards.toxicity.profanity import ProfanityModel, ProfanityScorer
from training.profanity_export import from_wheel

TEXTS = ["you are an idiot", "what a lovely day", "I hate all of them, the filthy animals", "f*** this s***",
         "Paris is the capital of France.", "", "   ", "!!!", "The THE the", "naïve café, ŠKODA", "idiot idiot IDIOT",
         "shut up you stupid cow", "Thank you so much for the quick reply, see you on Monday."]


def test_the_shipped_file_is_the_installed_wheels_model() -> None:
    shipped, wheel = ProfanityModel.load(), from_wheel()
    assert shipped.words == wheel.words and shipped.stop_words == wheel.stop_words
    assert shipped.token_pattern == wheel.token_pattern and shipped.source == wheel.source
    for name in ("idf", "coefficients", "intercepts", "sigmoid_a", "sigmoid_b"):
        assert np.array_equal(getattr(shipped, name), getattr(wheel, name)), name


def test_scores_equal_the_wheels_predict_prob() -> None:
    from profanity_check import predict_prob

    expected = np.asarray(predict_prob(TEXTS), dtype=np.float64)
    assert np.array_equal(ProfanityScorer().score(TEXTS), expected)


def test_scoring_imports_no_scikit_learn() -> None:
    # A fresh interpreter: this test process has imported scikit-learn for the comparisons above.
    import subprocess

    code = ("import sys\nfrom guardproxy.guards.toxicity.profanity import ProfanityScorer\n"
            "ProfanityScorer().score(['warm up'])\nprint(any(m.split('.')[0] in ('sklearn', 'scipy', 'joblib') "
            "for m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
