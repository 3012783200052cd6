"""Leave one source out for ``guard: toxicity`` (run it with ``benchmarks/loso.py toxicity``).

A task per source: OLID tweets, ETHOS comments and ToxiGen statements (``toxicity_dev.jsonl``) and
HateCheck's functional tests (``toxicity_hatecheck.jsonl``). A row's score is the guard's own: its
highest sentence-window score with the default config (profanity model plus implicit head), as
``ToxicityGuard.scan`` reports it with the threshold at 0. ``bench`` makes the same plugin for another
config (``toxicity_encoder_guard_loso.py`` runs it with ``detector: encoder``).

HateCheck's hard negatives are a policy decision (issue 14): counter-speech (functionalities
``counter_*``) and reclaimed slurs (``slur_reclaimed_nh``) stay in its figures, as the data labels
them (not toxic), and their false-positive rate is also shown on its own, beside the other
non-toxic rows'.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from loso import REPO, SHARED_DATA, SHORT_NAMES, GuardBench, Task
from loso_cache import FloatArray, ScoreCache, code_digest, texts_digest

from guardproxy.evaluation.datasets import source_name
from guardproxy.guards import GuardContext, Segment
from guardproxy.guards.toxicity.config import ToxicityConfig
from guardproxy.guards.toxicity.guard import ToxicityGuard

BATCH = 64
CODE = (REPO / "guardproxy" / "guards" / "toxicity", REPO / "guardproxy" / "guards" / "sentences.py")
HARD_NEGATIVES = {"counter-speech": "counter", "reclaimed slurs": "reclaimed"}


def guard_scores(texts: Sequence[str], config: ToxicityConfig) -> FloatArray:
    """Each text's highest window score (0 for a text too short to score), from the guard itself."""
    guard = ToxicityGuard(config.model_copy(update={"threshold": 0.0}))
    guard.warm()
    context = GuardContext("output")
    scores = np.zeros(len(texts))
    for offset in range(0, len(texts), BATCH):
        findings = guard.scan([Segment(text) for text in texts[offset:offset + BATCH]], context)
        assert isinstance(findings, list)  # the local detector answers at once
        for finding in findings:
            index = offset + finding.segment
            scores[index] = max(scores[index], finding.score)
    return scores


def bench(config: ToxicityConfig, notes: tuple[str, ...]) -> GuardBench:
    """The toxicity plugin for the guard with ``config`` (``BENCH``: the default one)."""

    def build_tasks(paths: Sequence[Path], cache: ScoreCache) -> list[Task]:
        return _tasks(paths, cache, config)

    data = (SHARED_DATA / "toxicity_dev.jsonl", SHARED_DATA / "toxicity_hatecheck.jsonl")
    return GuardBench(guard="toxicity", data=data, stock_threshold=config.effective_threshold(), grid=GRID,
                      build_tasks=build_tasks, notes=notes)


def _tasks(paths: Sequence[Path], cache: ScoreCache, config: ToxicityConfig) -> list[Task]:
    rows = [json.loads(line) for path in paths for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip()]
    texts = [row["text"] for row in rows]
    key = {"guard": "toxicity", "code": code_digest(CODE), "config": config.model_dump(), "texts": texts_digest(texts)}
    scores = cache.get(key, lambda: guard_scores(texts, config))
    sources = np.array([SHORT_NAMES.get(name, name) for name in (source_name(r["meta"]["source"]) for r in rows)])
    gold = np.array([bool(row["toxic"]) for row in rows])
    functionality = np.array([str(row["meta"].get("functionality", "")) for row in rows])
    tasks = []
    for source in dict.fromkeys(sources):
        mine = sources == source
        subsets = {name: np.char.find(functionality[mine], part) >= 0 for name, part in HARD_NEGATIVES.items()}
        subsets = {name: mask for name, mask in subsets.items() if mask.any()}
        if subsets:
            hard = np.logical_or.reduce(list(subsets.values()))
            subsets["other non-toxic"] = ~hard & ~gold[mine]
        tasks.append(Task(source, "toxic", scores[mine], gold[mine], subsets))
    return tasks


GRID = tuple(round(0.05 + 0.01 * i, 2) for i in range(91))
BENCH = bench(ToxicityConfig(), notes=(
    "ToxiGen is in-sample for the implicit head (it was trained on those rows). HateCheck's hard "
    "negatives (counter-speech, reclaimed slurs) count as non-toxic in its figures, as the data labels them; "
    "their FPR is shown apart.",))
