"""Train the grounding guard's entailment head (``guardproxy/guards/grounding/data/nli_head.npz``).

    pip download --no-deps bigbench==1.0.0 -d /tmp/bigbench
    tar xzf /tmp/bigbench/bigbench-1.0.0.tar.gz -C /tmp/bigbench
    .venv/bin/python training/grounding_nli_fit.py \
        --task /tmp/bigbench/bigbench-1.0.0/bigbench/benchmark_tasks/vitaminc_fact_verification/task.json

Data: the VitaminC fact-verification pairs (Schuster, Fisch and Barzilay, NAACL 2021; CC BY-SA 3.0,
from Wikipedia revisions) as the ``bigbench`` 1.0.0 source distribution on PyPI ships them
(Apache-2.0 package; the task keeps VitaminC's licence). Each example is a Wikipedia sentence and
a claim, labelled True (the sentence supports the claim), False (it refutes it) or Neither. The
head learns "supported" against the other two, which is what the guard asks of a claim. Nothing of
the project's grounding measurement sets (HaluEval, WiCE, LFQA) is used here, so the head is left
out for every one of them.

The pairs are split by Wikipedia page (a fixed seed): the head is fitted on 90% of the pages and
the rest is reported, so near-identical revisions of one sentence never sit on both sides.
Encoding 100,000 sentences with MiniLM takes several minutes on two cores.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from guardproxy.guards.grounding.nli import HEAD_PATH, WORD_CHECKS, pair_features, word_checks, words_of

DEFAULT_SEED = 7
_PTB = {"-LRB-": "(", "-RRB-": ")", "-LSB-": "[", "-RSB-": "]", "-LCB-": "{", "-RCB-": "}", "\ufffd": " "}


def plain(text: str) -> str:
    """Wikipedia dump tokenization back to ordinary text: "( born 1989 ) , she 's" -> "(born 1989), she's"."""
    for token, character in _PTB.items():
        text = text.replace(token, character)
    text = re.sub(r"\s+([,.;:!?%)\]}])", r"\1", text)
    text = re.sub(r"([(\[{$])\s+", r"\1", text)
    text = text.replace(" 's", "'s").replace(" n't", "n't").replace("`` ", '"').replace(" ''", '"')
    return re.sub(r"\s+", " ", text).strip()


def read_pairs(path: Path) -> tuple[list[str], list[str], list[str], list[bool]]:
    """(pages, evidence sentences, claims, supported) of the BIG-bench VitaminC task."""
    pages, evidence, claims, supported = [], [], [], []
    for example in json.loads(path.read_text(encoding="utf-8"))["examples"]:
        head, claim = example["input"].rsplit("\nClaim: ", 1)
        page, _, sentence = head.partition(": ")
        scores = example["target_scores"]
        pages.append(page)
        evidence.append(plain(sentence))
        claims.append(plain(claim))
        supported.append(max(scores, key=scores.get) == "True")
    return pages, evidence, claims, supported


_NUMBER = re.compile(r"\b\d[\d,]*(?:\.\d+)?\b")
_VERB = re.compile(r"\b(is|was|are|were|has|have|had|will|can|did|does)\b")


def _other_number(match: re.Match[str], generator: random.Random) -> str:
    digits = match.group().replace(",", "")
    value = float(digits) if "." in digits else int(digits)
    changed = value + generator.choice([-1, 1]) * max(1, round(abs(value) * generator.uniform(0.1, 0.5)))
    return str(round(changed, 2)) if isinstance(changed, float) else str(changed)


def perturbed(evidence: Sequence[str], claims: Sequence[str], supported: Sequence[bool],
              seed: int) -> tuple[list[int], list[str]]:
    """(the pair it came from, claim) of pairs that are *not* supported, made from supported ones: a number
    the sentence states changed to another, or a "not" put after the claim's first auxiliary verb.
    VitaminC's own refuted claims rarely differ from their sentence so plainly; the guard must catch these."""
    generator = random.Random(seed)
    origins, changed = [], []
    for i, (sentence, claim, label) in enumerate(zip(evidence, claims, supported, strict=True)):
        if not label:
            continue
        numbers = [m for m in _NUMBER.finditer(claim) if m.group() in sentence]
        if numbers and generator.random() < 0.5:
            m = generator.choice(numbers)
            origins.append(i)
            changed.append(claim[: m.start()] + _other_number(m, generator) + claim[m.end() :])
        elif (verb := _VERB.search(claim)) and " not " not in f" {claim} " and generator.random() < 0.3:
            origins.append(i)
            changed.append(claim[: verb.end()] + " not" + claim[verb.end() :])
    return origins, changed


def encode(texts: Sequence[str], cache: Path | None) -> npt.NDArray[np.float32]:
    """MiniLM vectors of ``texts``; with ``cache``, vectors of texts seen before are read from it (an .npz of
    texts and vectors) and the new ones added, so a rerun only encodes what changed."""
    from guardproxy.embeddings import shared_encoder

    known: dict[str, npt.NDArray[np.float32]] = {}
    if cache is not None and cache.is_file():
        with np.load(cache, allow_pickle=False) as body:
            known = dict(zip(body["texts"].tolist(), body["vectors"], strict=True))
    missing = list(dict.fromkeys(t for t in texts if t not in known))
    if missing:
        known.update(zip(missing, shared_encoder().encode(missing), strict=True))
        if cache is not None:
            np.savez(cache, texts=np.array(list(known)), vectors=np.array(list(known.values()), dtype=np.float32))
    return np.array([known[t] for t in texts], dtype=np.float32)


def features(evidence: Sequence[str], claims: Sequence[str], cache: Path | None) -> npt.NDArray[np.float32]:
    u, v = encode(claims, cache), encode(evidence, cache)
    checks = np.array([word_checks(words_of(c), words_of(e), float(a @ b))
                       for c, e, a, b in zip(claims, evidence, u, v, strict=True)], dtype=np.float32)
    return pair_features(u, v, checks)


def main(argv: Sequence[str] | None = None) -> int:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", type=Path, required=True, help="BIG-bench vitaminc_fact_verification/task.json")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--c", type=float, default=1.0, help="inverse regularisation strength")
    parser.add_argument("--out", type=Path, default=HEAD_PATH)
    parser.add_argument("--cache", type=Path, default=None,
                        help="keep sentence vectors in this .npz (a rerun skips MiniLM)")
    args = parser.parse_args(argv)
    if not args.task.is_file():
        print(f"VitaminC task file not found: {args.task} (see this script's docstring)", file=sys.stderr)
        return 2
    pages, evidence, claims, supported = read_pairs(args.task)
    held_pages = set(random.Random(args.seed).sample(sorted(set(pages)), len(set(pages)) // 10))
    origins, extra_claims = perturbed(evidence, claims, supported, args.seed)
    x = features([*evidence, *(evidence[i] for i in origins)], [*claims, *extra_claims], args.cache)
    y = np.array([*supported, *([False] * len(extra_claims))])
    held = np.array([page in held_pages for page in [*pages, *(pages[i] for i in origins)]])
    model = LogisticRegression(C=args.c, max_iter=2000, class_weight="balanced")
    model.fit(x[~held], y[~held])
    figures: dict[str, Any] = {"perturbed_pairs": len(extra_claims)}
    figures |= {half: {"pairs": int(mask.sum()), "supported": int(y[mask].sum()),
                      "auroc": round(float(roc_auc_score(y[mask], model.predict_proba(x[mask])[:, 1])), 4),
                      "accuracy": round(float(model.score(x[mask], y[mask])), 4)}
               for half, mask in (("fit", ~held), ("held_out_pages", held))}
    provenance = {"data": "VitaminC fact verification (CC BY-SA 3.0) as shipped in PyPI bigbench 1.0.0, "
                          "bigbench/benchmark_tasks/vitaminc_fact_verification/task.json",
                  "label": "True = supported; False and Neither = not supported; plus supported pairs with a "
                           "number changed or a 'not' added, as not supported (perturbed)",
                  "model": f"sklearn LogisticRegression(C={args.c}, class_weight=balanced)",
                  "seed": args.seed, "figures": figures}
    np.savez(args.out, coefficients=model.coef_[0].astype(np.float32), intercept=np.float64(model.intercept_[0]),
             word_checks=np.array(WORD_CHECKS), provenance=np.array(json.dumps(provenance)))
    print(json.dumps(provenance, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
