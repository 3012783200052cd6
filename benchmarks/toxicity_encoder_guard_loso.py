"""``benchmarks/loso.py toxicity`` for the guard with ``detector: encoder`` (issue 14).

    .venv/bin/python benchmarks/toxicity_encoder_guard_loso.py [--max-fpr 0.1] [--out FILE]

The same harness, tasks and threshold fit as the default guard's run (a row's score is its highest
sentence-window score, as ``ToxicityGuard.scan`` reports it), with the shipped fine-tuned encoder.
That model was trained on ToxiGen and HateCheck, so their figures here are in-sample; the
leave-one-source-out figures for those two come from ``toxicity_encoder_loso.py`` (a model per
held-out source). OLID and ETHOS were never trained on. Writes ``results/loso-toxicity-encoder-guard.json``.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import loso
import loso_toxicity

from guardproxy.guards.toxicity.config import ToxicityConfig

if __name__ == "__main__":
    loso_toxicity.BENCH = loso_toxicity.bench(ToxicityConfig(detector="encoder"), notes=(
        "detector: encoder. ToxiGen and HateCheck are in-sample for the shipped model (trained on both); "
        "OLID and ETHOS were never trained on. HateCheck's hard negatives count as non-toxic; their FPR is "
        "shown apart.",))
    argv = sys.argv[1:]
    if "--out" not in argv:
        argv += ["--out", str(loso.RESULTS / "loso-toxicity-encoder-guard.json")]
    sys.exit(loso.main(["toxicity", *argv]))
