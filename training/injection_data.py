"""The rows the injection head is fitted and measured on, read from ``../shared/data`` at run time.

Shared by ``training/injection_head.py`` (what ships) and ``benchmarks/injection_quality.py`` (what
is measured), so that both see the same rows. Every row names its source; a source's ``use`` says
whether a shipped model may be fitted on it:

- direct positives: llm-warden jailbreaks (``injection_dev.jsonl``, MIT) and deepset injections
  (``injection_deepset.jsonl``, Apache-2.0);
- direct negatives: the benign rows of both, requests about text written for this project
  (``benchmarks/assistant_requests.py``), CLINC150 (CC-BY-3.0), BANKING77 (CC-BY-4.0), the
  non-toxic Davidson tweets (MIT), HateCheck (CC-BY-4.0) and ToxiGen (MIT) statements (hateful
  text is not an injection);
- measure only: the non-toxic OLID and ETHOS rows, and LFQA evidence documents as clean documents.

Indirect rows come from ``benchmarks/indirect_corpus.py`` (documents with a planted instruction
and their clean copies).
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
CACHE = REPO / "benchmarks" / ".cache" / "injection"
sys.path.insert(0, str(REPO / "benchmarks"))

from assistant_requests import build as build_requests  # noqa: E402
from indirect_corpus import Row as CorpusRow  # noqa: E402
from indirect_corpus import build as build_corpus  # noqa: E402

Vectors = npt.NDArray[np.float32]


@dataclass(frozen=True)
class LabelledText:
    text: str
    positive: bool
    source: str
    trainable: bool


def _jsonl(path: Path) -> Iterator[dict[str, object]]:
    for line in path.read_text(encoding="utf-8").split("\n"):
        if line.strip():
            yield json.loads(line)


def direct_rows(data: Path = DATA) -> list[LabelledText]:
    """Every direct-injection row, positives and negatives, with its source."""
    rows: list[LabelledText] = []
    for row in _jsonl(data / "injection_dev.jsonl"):
        rows.append(LabelledText(str(row["text"]), bool(row["injection"]),
                                 "llm-warden" if row["injection"] else "llm-warden benign", True))
    for row in _jsonl(data / "injection_deepset.jsonl"):
        rows.append(LabelledText(str(row["text"]), bool(row["injection"]),
                                 "deepset" if row["injection"] else "deepset benign", True))
    rows.extend(LabelledText(text, False, "written requests", True) for text in build_requests())
    for name, source in (("topics_dev.jsonl", "CLINC150"), ("topics_banking77.jsonl", "BANKING77")):
        rows.extend(LabelledText(str(row["text"]), False, source, True) for row in _jsonl(data / name))
    rows.extend(LabelledText(str(row["text"]), False, "Davidson", True)
                for row in _jsonl(data / "toxicity_train_davidson.jsonl") if not row["toxic"])
    rows.extend(LabelledText(str(row["text"]), False, "HateCheck", True)
                for row in _jsonl(data / "toxicity_hatecheck.jsonl"))
    for row in _jsonl(data / "toxicity_dev.jsonl"):
        source = str(row["meta"]["source"])  # type: ignore[index]
        if source.startswith("microsoft/TOXIGEN"):
            rows.append(LabelledText(str(row["text"]), False, "ToxiGen", True))
        elif not row["toxic"]:  # OLID and ETHOS: measured, never fitted on
            rows.append(LabelledText(str(row["text"]), False, "OLID" if source.startswith("OLID") else "ETHOS",
                                     False))
    return rows


def indirect_rows(data: Path = DATA, seed: int = 15) -> list[CorpusRow]:
    return build_corpus(data, seed)


def lfqa_documents(data: Path = DATA, limit: int = 400) -> list[str]:
    """Distinct LFQA evidence documents: clean documents to measure false positives on, never to fit."""
    seen: dict[str, None] = {}
    for row in _jsonl(data / "grounding_lfqa.jsonl"):
        seen.setdefault(str(row["context"]).strip(), None)
        if len(seen) >= limit:
            break
    return list(seen)


def data_present(data: Path = DATA) -> bool:
    names = ["injection_dev.jsonl", "injection_deepset.jsonl", "topics_dev.jsonl", "topics_banking77.jsonl",
             "toxicity_train_davidson.jsonl", "toxicity_hatecheck.jsonl", "toxicity_dev.jsonl", "grounding_dev.jsonl"]
    return all((data / name).is_file() for name in names)


class EmbeddingStore:
    """MiniLM vectors of texts, remembered on disk (gitignored) so that reruns skip the encoder."""

    def __init__(self, encode: Callable[[Sequence[str]], Vectors], path: Path = CACHE / "vectors.npz") -> None:
        self._encode = encode
        self._path = path
        self._vectors: dict[str, Vectors] = {}
        if path.is_file():
            with np.load(path, allow_pickle=False) as archive:
                self._vectors = dict(zip(archive["keys"].tolist(), archive["vectors"], strict=True))
        self._dirty = False

    @staticmethod
    def _key(text: str) -> str:
        return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()

    def vectors(self, texts: Sequence[str], batch: int = 256) -> Vectors:
        keys = [self._key(t) for t in texts]
        missing = list(dict.fromkeys(t for t, k in zip(texts, keys, strict=True) if k not in self._vectors))
        for start in range(0, len(missing), batch):
            chunk = missing[start:start + batch]
            for text, vector in zip(chunk, self._encode(chunk), strict=True):
                self._vectors[self._key(text)] = vector
            self._dirty = True
            print(f"  encoded {min(start + batch, len(missing))}/{len(missing)} windows", file=sys.stderr)
        if not texts:
            return np.zeros((0, 384), dtype=np.float32)
        return np.stack([self._vectors[k] for k in keys])

    def save(self) -> None:
        if self._dirty:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            keys = list(self._vectors)
            np.savez(self._path, keys=np.array(keys), vectors=np.stack([self._vectors[k] for k in keys]))
            self._dirty = False
