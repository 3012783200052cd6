"""Leave one source out for the fine-tuned toxicity encoder (``detector: encoder``, issue 14).

    nice -n 10 .venv/bin/python training/toxicity_encoder.py loso     # trains 3 models, writes the scores
    .venv/bin/python benchmarks/toxicity_encoder_loso.py [--scores FILE] [--max-fpr 0.1]

Reads ``benchmarks/.cache/toxicity-encoder/scores.json`` (not committed): every row's score from a model that never
saw its source (HateCheck from a model trained on Davidson + ToxiGen, ToxiGen from Davidson +
HateCheck, OLID and ETHOS from the model trained on all three, which is the one that ships). Whole
texts are scored (the guard scores sentence windows; ``benchmarks/loso.py toxicity`` with
``detector: encoder`` measures that). Per source it reports F1 at three thresholds:

- ``shipped``: one threshold for all, the best F1 on ToxiGen (scored by the model that left it out)
  with its FPR <= max-fpr. HateCheck cannot take part: no threshold below 0.99 keeps its FPR at
  0.10 (its counter-speech and reclaimed slurs score like hate). OLID and ETHOS never choose anything;
- ``harness``: as ``benchmarks/loso.py toxicity --max-fpr 0.1`` chooses for the shipped guard's
  baseline: the best mean F1 over the three other sources, OLID and ETHOS included, at mean FPR <=
  max-fpr (comparable with that baseline; it looks at OLID/ETHOS labels, so it is never what ships);
- ``ceiling``: this source's own best threshold at FPR <= max-fpr (in-sample, for reference).

HateCheck's counter-speech and reclaimed-slur rows get their FPR apart (they count as non-toxic).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import numpy.typing as npt
from loso import auroc

REPO = Path(__file__).resolve().parent.parent
SCORES = REPO / "benchmarks" / ".cache" / "toxicity-encoder" / "scores.json"  # per row: not committed
TUNED_ON = ("ToxiGen",)
MEASURED = ("OLID", "ETHOS", "ToxiGen", "HateCheck")
GRID = np.concatenate([np.round(np.arange(0.02, 0.99, 0.01), 2), 1 - np.geomspace(0.01, 1e-5, 31)])
Array = npt.NDArray[np.float64]
Mask = npt.NDArray[np.bool_]


def figures(scores: Array, gold: Mask, threshold: float) -> dict[str, float]:
    fired = scores >= threshold
    tp, fp, fn = int((fired & gold).sum()), int((fired & ~gold).sum()), int((~fired & gold).sum())
    return {"threshold": float(threshold), "precision": round(tp / max(tp + fp, 1), 3),
            "recall": round(tp / max(tp + fn, 1), 3), "f1": round(2 * tp / max(2 * tp + fp + fn, 1), 3),
            "fpr": round(fp / max(int((~gold).sum()), 1), 3)}


def choose(parts: list[tuple[Array, Mask]], max_fpr: float, mean_fpr: bool = False) -> float:
    """The threshold of the best mean F1 over ``parts`` whose every part's FPR (or, ``mean_fpr``, their
    mean) is <= ``max_fpr``: a grid step of 0.01, and finer near 1, where a confident model puts most
    of its scores."""
    best, chosen = -1.0, 1.0
    for threshold in GRID:
        measured = [figures(s, g, threshold) for s, g in parts]
        fprs = [m["fpr"] for m in measured]
        if (np.mean(fprs) if mean_fpr else max(fprs)) <= max_fpr:
            f1 = float(np.mean([m["f1"] for m in measured]))
            if f1 > best:
                best, chosen = f1, float(threshold)
    return chosen


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scores", type=Path, default=SCORES)
    parser.add_argument("--max-fpr", type=float, default=0.10)
    args = parser.parse_args()
    if not args.scores.exists():
        print(f"no scores at {args.scores}: run training/toxicity_encoder.py loso first (needs ../shared/data)")
        return 0
    data = json.loads(args.scores.read_text(encoding="utf-8"))
    sources = np.array(data["sources"])
    gold = np.array(data["gold"], dtype=bool)
    scores = np.array(data["left_out"], dtype=np.float64)
    functionality = np.array(data["functionality"])

    def part(source: str) -> tuple[Array, Mask]:
        return scores[sources == source], gold[sources == source]

    shipped = choose([part(s) for s in TUNED_ON], args.max_fpr)
    print(f"settings {data['settings']}; shipped threshold {shipped:.4g} (max FPR {args.max_fpr} on {TUNED_ON})")
    for source in MEASURED:
        print(f"{source}: AUROC {auroc(*part(source)) or 0:.3f}")
    print("| source | rule | threshold | P | R | F1 | FPR | counter-speech FPR | reclaimed slurs FPR |")
    print("|---|---|---|---|---|---|---|---|---|")
    results = []
    for source in MEASURED:
        others = [s for s in MEASURED if s != source]
        rules = {"shipped": shipped, "harness": choose([part(s) for s in others], args.max_fpr, mean_fpr=True),
                 "ceiling": choose([part(source)], args.max_fpr)}
        for rule, threshold in rules.items():
            entry = {"source": source, "rule": rule, **figures(*part(source), threshold)}
            for name, key in (("counter", "counter_"), ("reclaimed", "slur_reclaimed")):
                hard = (sources == source) & (np.char.find(functionality, key) >= 0)
                if hard.any():
                    entry[f"fpr_{name}"] = round(float((scores[hard] >= threshold).mean()), 3)
            results.append(entry)
            print(f"| {source} | {rule} | {threshold:.4g} | {entry['precision']:.3f} | {entry['recall']:.3f} | "
                  f"{entry['f1']:.3f} | {entry['fpr']:.3f} | {entry.get('fpr_counter', '')} | "
                  f"{entry.get('fpr_reclaimed', '')} |")
    out = REPO / "benchmarks" / "results" / "loso-toxicity-encoder.json"
    out.write_text(json.dumps({"settings": data["settings"], "max_fpr": args.max_fpr, "shipped_threshold": shipped,
                               "results": results}, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
