"""The keyword matcher's piece tagging against tagging whole texts: same hits, and the time of each.

``LemmaMatcher.find`` tags only pieces of a text around tokens that may start a keyword
(``lemmas._TAG_MARGIN`` tokens either side). This tags every text whole, as ``find`` did before,
and counts the texts whose hits differ. Texts: the rows of ``../shared/data/topics_dev.jsonl``
(skipped when absent), messages of 8 joined rows, and 2,000-character ``prose.Prose`` prompts.
Keywords: those of ``policies/examples/topics.yaml``.

    taskset -c 1 .venv/bin/python benchmarks/topics_lemma_pieces.py
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Sequence
from pathlib import Path

import yaml
from prose import Prose

from guardproxy.guards.pii.analyzer import shared_nlp_engine
from guardproxy.guards.topics.lemmas import _UNUSED_PIPES, LemmaMatcher

REPO = Path(__file__).resolve().parent.parent
DATA = REPO.parent / "shared" / "data" / "topics_dev.jsonl"
POLICY = REPO / "policies" / "examples" / "topics.yaml"

Hits = list[tuple[str, int, int]]


def main() -> None:
    nlp = shared_nlp_engine("ner", "en").nlp["en"]  # type: ignore[attr-defined]
    topics = yaml.safe_load(POLICY.read_text())["chains"]["default"]["input"][0]["topics"]
    matcher = LemmaMatcher(nlp, [(t["name"], k) for t in topics for k in t.get("keywords", [])])

    def whole(texts: Sequence[str]) -> list[Hits]:
        docs = nlp.pipe(list(texts), disable=list(_UNUSED_PIPES))
        return [sorted((h.topic, h.start, h.end) for h in matcher._find_in(doc)) for doc in docs]

    def pieces(texts: Sequence[str]) -> list[Hits]:
        return [sorted((h.topic, h.start, h.end) for h in hits) for hits in matcher.find(list(texts))]

    prose = Prose(5)
    sets = {"prose, 2,000 chars": [prose.text(2000) for _ in range(30)]}
    if DATA.exists():
        rows = [json.loads(line)["text"] for line in DATA.read_text(encoding="utf-8").splitlines() if line.strip()]
        rng = random.Random(3)
        sets = {"dev rows": rows[:1500], "8 dev rows joined": [" ".join(rng.sample(rows, 8)) for _ in range(150)],
                **sets}
    else:
        print(f"dev rows skipped: {DATA} not found")
    print(f"{'texts':<20} {'n':>5} {'differ':>6} {'hits':>5} {'whole ms/text':>14} {'pieces ms/text':>15}")
    for name, texts in sets.items():
        whole(texts[:2]), pieces(texts[:2])
        started = time.perf_counter()
        expected = whole(texts)
        middle = time.perf_counter()
        found = pieces(texts)
        ended = time.perf_counter()
        differ = sum(a != b for a, b in zip(expected, found, strict=True))
        print(f"{name:<20} {len(texts):>5} {differ:>6} {sum(map(len, expected)):>5} "
              f"{(middle - started) / len(texts) * 1000:>14.1f} {(ended - middle) / len(texts) * 1000:>15.1f}")


if __name__ == "__main__":
    main()
