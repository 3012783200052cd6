"""Guard scores cached on disk for ``loso.py``, so a rerun costs seconds instead of minutes.

A score file is named after a digest of what produced it: the guard's code and data files
(``code_digest``), its config and the texts (``texts_digest``). Any change to one of them is a new
file, never a stale score. The cache lives in ``benchmarks/.cache/loso/`` (gitignored).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

CACHE = Path(__file__).resolve().parent / ".cache" / "loso"

FloatArray = npt.NDArray[np.float64]


def code_digest(paths: Sequence[Path]) -> str:
    """A digest of every file under ``paths``: cached scores are stale once the guard's code or data changes."""
    digest = hashlib.sha256()
    for root in paths:
        files = sorted(p for p in (root.rglob("*") if root.is_dir() else [root])
                       if p.is_file() and "__pycache__" not in p.parts)
        for path in files:
            digest.update(str(path.relative_to(root.parent)).encode())
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class ScoreCache:
    """Scores on disk as ``.npy``, keyed on a JSON description of what produced them (code, config, texts)."""

    directory: Path = CACHE
    enabled: bool = True

    def get(self, key: Mapping[str, Any], compute: Callable[[], FloatArray]) -> FloatArray:
        name = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:24]
        path = self.directory / f"{name}.npy"
        if self.enabled and path.is_file():
            return np.asarray(np.load(path), dtype=np.float64)
        scores = np.asarray(compute(), dtype=np.float64)
        if self.enabled:
            self.directory.mkdir(parents=True, exist_ok=True)
            np.save(path, scores)
        return scores


def texts_digest(texts: Sequence[str]) -> str:
    digest = hashlib.sha256()
    for text in texts:
        digest.update(hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest())
    return digest.hexdigest()[:16]
