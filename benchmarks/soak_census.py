"""``guardproxy serve`` with a heap census on SIGUSR1, for ``soak.py --launcher benchmarks/soak_census.py``.

The soak signals the proxy after each idle reading; each census appends one JSON line to
``$SOAK_CENSUS_OUT`` (default /tmp/soak-census.jsonl): pymalloc's allocated blocks, glibc's
``mallinfo2``, the size of every loaded spaCy pipeline's ``StringStore``, and a count of the
objects the garbage collector tracks, by type. Objects frozen at start-up (``heap.settle_heap``)
are not counted, so the types are what requests left behind. Two lines, after warm-up and at the
end, show what grew; a census takes about a second and runs only while the proxy is idle.
"""

from __future__ import annotations

import collections
import ctypes
import gc
import json
import os
import signal
import sys
import time
from types import FrameType
from typing import Any

import spacy.language

from guardproxy.cli import main

OUT = os.environ.get("SOAK_CENSUS_OUT", "/tmp/soak-census.jsonl")
_PIPELINES: list[spacy.language.Language] = []
_language_init = spacy.language.Language.__init__


def _recording_init(self: spacy.language.Language, *args: Any, **kwargs: Any) -> None:
    _language_init(self, *args, **kwargs)
    _PIPELINES.append(self)


_MALLINFO = ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")


class _Mallinfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in _MALLINFO]


def _malloc() -> dict[str, int]:
    libc = ctypes.CDLL("libc.so.6")
    libc.mallinfo2.restype = _Mallinfo2
    info = libc.mallinfo2()
    return {name: int(getattr(info, name)) for name in _MALLINFO}


def census(_signum: int, _frame: FrameType | None) -> None:
    gc.collect()
    tracked = gc.get_objects()
    types = collections.Counter(f"{type(o).__module__}.{type(o).__qualname__}" for o in tracked)
    line = {"t": time.time(), "pymalloc_blocks": sys.getallocatedblocks(), "gc_tracked": len(tracked),
            "gc_frozen": gc.get_freeze_count(), "malloc": _malloc(),
            "spacy_strings": [len(nlp.vocab.strings) for nlp in _PIPELINES],
            "types": dict(types.most_common(300))}
    with open(OUT, "a") as out:
        out.write(json.dumps(line) + "\n")


if __name__ == "__main__":
    spacy.language.Language.__init__ = _recording_init  # type: ignore[method-assign]
    signal.signal(signal.SIGUSR1, census)
    sys.argv[0] = "guardproxy"
    main()
