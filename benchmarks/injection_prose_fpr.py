"""The injection guard on text it never saw: the benchmarks' own 200-character prose prompts (which
carry instructions to the assistant, such as "Keep the tone neutral"), against recall on the
fitted direct sources, at the default policy's flag and block thresholds and above. Needs
``../shared/data`` for the recall columns.

    .venv/bin/python benchmarks/injection_prose_fpr.py
"""

from __future__ import annotations

import json
from pathlib import Path

from prose import Prose

from guardproxy.guards import GuardContext, Segment
from guardproxy.guards.injection.config import InjectionConfig
from guardproxy.guards.injection.guard import InjectionGuard

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
THRESHOLDS = (0.9731, 0.9955, 0.998, 0.999, 0.9995)


def main() -> None:
    guard = InjectionGuard(InjectionConfig(threshold=0.5, indirect=False))
    guard.warm()

    def score(text: str) -> float:
        found = guard.scan([Segment(text, ("messages", 0, "content"), "user")], GuardContext("input"))
        assert isinstance(found, list)
        return max((f.score for f in found), default=0.0)

    prose = Prose(424242)
    prose_scores = [score(prose.text(200)) for _ in range(300)]
    sources = {}
    for name in ("injection_dev.jsonl", "injection_deepset.jsonl"):
        path = DATA / name
        if path.exists():
            with path.open(encoding="utf-8") as lines:  # not splitlines(): texts hold U+2028 and the like
                rows = [json.loads(line) for line in lines]
            sources[name] = [score(r["text"]) for r in rows if r["injection"]]
        else:
            print(f"{path} is missing: its recall is not shown")
    for threshold in THRESHOLDS:
        cells = [f"prose FPR {sum(s >= threshold for s in prose_scores) / len(prose_scores):.3f}"]
        cells += [f"{name} recall (fitted) {sum(s >= threshold for s in scores) / len(scores):.3f}"
                  for name, scores in sources.items()]
        print(f"threshold {threshold}: " + ", ".join(cells))


if __name__ == "__main__":
    main()
