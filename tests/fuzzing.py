"""Hypothesis settings shared by the fuzz tests (``test_fuzz_*.py``).

In CI every property runs a fixed number of examples, derandomized (the same
examples on every run, no example database), so the suite is deterministic and
bounded. To hunt for crashes locally, set ``GUARDPROXY_FUZZ_EXAMPLES``: every
property then runs that many fresh random examples, and a failure prints the
blob that reproduces it (``@reproduce_failure``)::

    GUARDPROXY_FUZZ_EXAMPLES=5000 .venv/bin/pytest -q tests/test_fuzz_*.py -o timeout=0
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

EXAMPLES_ENV = "GUARDPROXY_FUZZ_EXAMPLES"
_SLOW_CHECKS = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]


def fuzz_settings(ci_examples: int) -> settings:
    """``ci_examples`` derandomized examples, or ``$GUARDPROXY_FUZZ_EXAMPLES`` random ones."""
    wanted = os.environ.get(EXAMPLES_ENV, "").strip()
    if wanted:
        return settings(max_examples=int(wanted), deadline=None, derandomize=False, print_blob=True,
                        suppress_health_check=_SLOW_CHECKS)
    return settings(max_examples=ci_examples, deadline=None, derandomize=True, database=None,
                    suppress_health_check=_SLOW_CHECKS)
