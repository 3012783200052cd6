"""Quality and cost of ``guard: secrets`` on the generated set of ``secrets_corpus.py``, beside the
baseline it replaces: the four credential patterns the default policy's ``keywords`` entries held.

Per secret kind: recall (the whole secret is inside the guard's redactions) and how often the finding's
label is the kind. Per look-alike class: the false-positive rate (texts with any finding). Cost: p50
and p95 of one ``scan`` of a 1,000-character text (look-alikes only, and look-alikes with secrets), on
this machine, after a warm-up.

    .venv/bin/python benchmarks/secrets_quality.py [--seed 15] [--per-kind 60] [--json OUT] [--real]

``--real`` also measures the false-positive rate on real text that holds no credentials: every text
field of the files in ``../shared/data/`` (user queries, tweets, web and Wikipedia passages, synthetic
PII sentences, jailbreak prompts), per file and source; measured only, nothing was tuned on it. It is
skipped, with a message, when the folder is absent.

``--gitleaks-rules DIR`` checks the guard against examples it was not written for: the literal strings
in gitleaks' own rule definitions (``cmd/generate/config/rules/*.go`` of a gitleaks checkout, e.g.
``git --git-dir=<mirror> archive HEAD cmd/generate/config/rules | tar -x -C /tmp/gl``), the true
positives (``tps``) it must find and the false positives (``fps``) it must not, each kind that fires.

What was tuned on this set: the look-alike classes only (the password rule's length and entropy minimum
were chosen so that the placeholder and "password" sentences stay clean); the secret formats come from
gitleaks and detect-secrets and were not changed for it.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import statistics
import string
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from secrets_corpus import Sample, generate

from guardproxy.guards.base import GuardContext, Segment
from guardproxy.guards.keywords import KeywordsConfig, KeywordsGuard
from guardproxy.guards.secrets.config import SecretsConfig
from guardproxy.guards.secrets.guard import SecretsGuard

# The `credentials` entries of policies/default.yaml before issue 15.
BASELINE_PATTERNS = [r"sk-(?:proj-)?[A-Za-z0-9_-]{20,}", r"AKIA[0-9A-Z]{16}", r"gh[pousr]_[A-Za-z0-9]{36,}",
                     r"xox[baprs]-[A-Za-z0-9-]{10,}"]
Spans = Callable[[str], list[tuple[int, int, str]]]
CONTEXT = GuardContext("input")


def _guard_spans(guard: SecretsGuard | KeywordsGuard) -> Spans:
    def spans(text: str) -> list[tuple[int, int, str]]:
        return [(f.start or 0, f.end or len(text), f.label) for f in guard.scan([Segment(text)], CONTEXT)]
    return spans


def _covered(secret: tuple[int, int], found: Sequence[tuple[int, int, str]]) -> bool:
    """Every character of the secret is inside some finding."""
    return all(any(s <= i < e for s, e, _ in found) for i in range(*secret))


def quality(spans: Spans, positives: list[Sample], negatives: list[Sample]) -> dict[str, dict[str, float]]:
    hits: dict[str, list[int]] = defaultdict(list)
    labelled: dict[str, list[int]] = defaultdict(list)
    for sample in positives:
        assert sample.secret is not None
        found = spans(sample.text)
        hits[sample.kind].append(_covered(sample.secret, found))
        labelled[sample.kind].append(any(label == sample.kind and s < sample.secret[1] and e > sample.secret[0]
                                         for s, e, label in found))
    flagged: dict[str, list[int]] = defaultdict(list)
    for sample in negatives:
        flagged[sample.kind].append(bool(spans(sample.text)))
    return {
        "recall": {k: statistics.fmean(v) for k, v in hits.items()},
        "label": {k: statistics.fmean(v) for k, v in labelled.items()},
        "fpr": {k: statistics.fmean(v) for k, v in flagged.items()},
        "overall": {"recall": statistics.fmean(x for v in hits.values() for x in v),
                    "fpr": statistics.fmean(x for v in flagged.values() for x in v)},
    }


def _texts_of(samples: list[Sample], rng: random.Random, count: int, size: int = 1000) -> list[str]:
    texts = []
    for _ in range(count):
        parts: list[str] = []
        while sum(len(p) + 1 for p in parts) < size:
            parts.append(rng.choice(samples).text)
        texts.append("\n".join(parts)[:size])
    return texts


def cost(spans: Spans, texts: list[str], repeats: int = 5) -> dict[str, float]:
    """p50 and p95 over texts of the median microseconds of ``repeats`` scans of each (after a warm-up
    pass). The median per text leaves out the scheduler's preemptions on a shared CPU (spikes
    that land on random texts), which would otherwise make the p95."""
    for text in texts:
        spans(text)
    per_text: list[list[float]] = [[] for _ in texts]
    for _ in range(repeats):
        for index, text in enumerate(texts):
            started = time.perf_counter_ns()
            spans(text)
            per_text[index].append((time.perf_counter_ns() - started) / 1000)
    times = sorted(statistics.median(t) for t in per_text)
    return {"p50_us": times[len(times) // 2], "p95_us": times[int(len(times) * 0.95)]}


SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
REAL_FIELDS = ("text", "context", "answer", "question")


def real_fpr(spans: Spans, show: int) -> dict[str, dict[str, float]]:
    """Per file and ``meta.source``: texts, and the share with any finding (all assumed secret-free)."""
    counts: dict[str, list[int]] = defaultdict(list)
    shown = 0
    for path in sorted(SHARED.glob("*.jsonl")):
        for line in path.read_text().split("\n"):
            if not line.strip():
                continue
            row = json.loads(line)
            source = f"{path.name}: {str(row.get('meta', {}).get('source', '-')).split()[0]}"
            for field in REAL_FIELDS:
                if isinstance(row.get(field), str) and row[field].strip():
                    found = spans(row[field])
                    counts[source].append(bool(found))
                    if found and shown < show:
                        shown += 1
                        print(f"--- real FP {source}: {[(row[field][s:e], k) for s, e, k in found]}")
    return {source: {"texts": len(v), "fpr": statistics.fmean(v)} for source, v in counts.items()}


_GO_LIST = r" := (?:append\()?\[\]string\{\n(.*?)\n\t\}"
_GO_ITEM = re.compile(r'^\t\t(`[^`]*`|"(?:[^"\\]|\\.)*")\s*,\s*(?://.*)?$', re.M)


def gitleaks_examples(folder: Path, name: str) -> list[tuple[str, str]]:
    """(file, text) of each plain string literal in the rules' ``tps`` or ``fps`` lists (generated
    and concatenated examples are left out: they need Go to run)."""
    found = []
    for path in sorted(folder.rglob("*.go")):
        for block in re.finditer(name + _GO_LIST, path.read_text(), re.S):
            for item in _GO_ITEM.finditer(block.group(1)):
                literal = item.group(1)
                found.append((path.name, literal[1:-1] if literal[0] == "`" else json.loads(literal)))
    return found


def check_gitleaks_examples(spans: Spans, folder: Path) -> dict[str, object]:
    tps, fps = gitleaks_examples(folder, "tps"), gitleaks_examples(folder, "fps")
    missed = [(f, t[:80]) for f, t in tps if not spans(t)]
    flagged = [(f, t[:80], sorted({k for _, _, k in spans(t)})) for f, t in fps if spans(t)]
    print(f"gitleaks' examples: {len(tps) - len(missed)} of {len(tps)} true positives found, "
          f"{len(flagged)} of {len(fps)} false positives flagged")
    for item in missed + flagged:  # type: ignore[operator]
        print("  ", item)
    return {"tps": len(tps), "tps_found": len(tps) - len(missed), "fps": len(fps), "fps_flagged": len(flagged),
            "flagged": flagged, "missed": missed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("--per-kind", type=int, default=60)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--misses", type=int, default=0, help="print up to N missed secrets and false positives")
    parser.add_argument("--real", action="store_true", help="also the FPR on ../shared/data (see above)")
    parser.add_argument("--gitleaks-rules", type=Path, help="gitleaks' rule definitions (see above)")
    args = parser.parse_args()
    positives, negatives = generate(args.seed, args.per_kind)
    guards: dict[str, Spans] = {
        "secrets": _guard_spans(SecretsGuard(SecretsConfig())),
        "baseline": _guard_spans(KeywordsGuard(KeywordsConfig(patterns=BASELINE_PATTERNS, case_sensitive=True,
                                                              label="CREDENTIAL"))),
    }
    rng = random.Random(args.seed)
    clean_texts = _texts_of(negatives, rng, 200)
    mixed_texts = _texts_of(negatives + positives, rng, 200)
    report: dict[str, object] = {"seed": args.seed, "per_kind": args.per_kind, "positives": len(positives),
                                 "negatives": len(negatives)}
    # A hostile text: 100,000 characters of `key=<16 random characters>`, a candidate value every 21.
    dense = [" ".join("key=" + "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(16))
                      for _ in range(5_000))]
    for name, spans in guards.items():
        result: dict[str, object] = dict(quality(spans, positives, negatives))
        result["cost_clean_1000"] = cost(spans, clean_texts)
        result["cost_mixed_1000"] = cost(spans, mixed_texts)
        result["cost_dense_100k"] = cost(spans, dense, repeats=3)
        report[name] = result
    ours, base = report["secrets"], report["baseline"]
    assert isinstance(ours, dict) and isinstance(base, dict)
    print(f"{'kind':26} {'recall':>7} {'label':>6} {'baseline':>9}")
    for kind in ours["recall"]:
        print(f"{kind:26} {ours['recall'][kind]:7.3f} {ours['label'][kind]:6.3f} {base['recall'][kind]:9.3f}")
    print(f"{'look-alike':26} {'FPR':>7} {'':>6} {'baseline':>9}")
    for kind in ours["fpr"]:
        print(f"{kind:26} {ours['fpr'][kind]:7.3f} {'':>6} {base['fpr'][kind]:9.3f}")
    for name in ("secrets", "baseline"):
        r = report[name]
        assert isinstance(r, dict)
        print(f"{name}: recall {r['overall']['recall']:.3f}, FPR {r['overall']['fpr']:.3f}, "
              f"1,000 chars p50 {r['cost_clean_1000']['p50_us']:.0f} us clean / "
              f"{r['cost_mixed_1000']['p50_us']:.0f} us mixed (p95 {r['cost_mixed_1000']['p95_us']:.0f} us); "
              f"100,000 dense characters {r['cost_dense_100k']['p50_us'] / 1000:.0f} ms")
    if args.misses:
        spans = guards["secrets"]
        missed = [s for s in positives if s.secret and not _covered(s.secret, spans(s.text))]
        false = [s for s in negatives if spans(s.text)]
        for sample in missed[: args.misses] + false[: args.misses]:
            print(f"--- {sample.kind} {sample.secret} {spans(sample.text)}\n{sample.text[:400]}")
    if args.real:
        if not SHARED.is_dir():
            print(f"--real: {SHARED} is absent, skipped")
        else:
            for name in ("secrets", "baseline"):
                figures = real_fpr(guards[name], args.misses if name == "secrets" else 0)
                report[f"real_fpr_{name}"] = figures
                total = sum(f["texts"] for f in figures.values())
                flagged = sum(f["texts"] * f["fpr"] for f in figures.values())
                print(f"{name} on real text: {flagged:.0f} of {total} texts flagged (FPR {flagged / total:.4f})")
                for source, f in figures.items():
                    if name == "secrets":
                        print(f"  {source:70} {f['texts']:6} texts, FPR {f['fpr']:.4f}")
    if args.gitleaks_rules:
        report["gitleaks_examples"] = check_gitleaks_examples(guards["secrets"], args.gitleaks_rules)
    if args.json:
        args.json.write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
