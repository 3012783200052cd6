"""Everything a guard author imports, in one place; the rest of ``guardproxy`` is not a guard's business.

A guard is one module: a settings model (``GuardConfig``), a class that implements
``Guard`` (``kind``, ``warm``, ``scan``), and a ``GuardType`` naming both, declared
in the package's ``pyproject.toml``::

    [project.entry-points."guardproxy.guards"]
    shouting = "my_package.shouting:GUARD_TYPE"

Then ``{guard: shouting, action: flag, ...}`` works in any policy. Tests and
applications that embed the engine may instead call ``REGISTRY.register(name, GuardType(...))``.

Besides the contract, what the built-in guards share, for guards that want the same:

- ``raise_if_abandoned()``: call it between units of work in a ``cpu`` guard, so a scan
  the engine stopped waiting for ends early (``abandonment.py``).
- ``shared_encoder()``: the process's all-MiniLM-L6-v2 encoder (384-dimensional,
  normalised rows, so a dot product is a cosine), loaded on first use; wrap it in a
  ``CachedEncoder`` to remember the vectors of texts seen before.
- ``shared_doc(nlp, text)``: the tokenized spaCy ``Doc`` of a text, the same one for every
  guard that asks while it is cached (``spacy_docs.py`` says what it may and may not be used for).
- ``compile_policy_regex(pattern, flags, engine)``: a policy's regular expression on RE2 (linear
  time), with Python's meaning; backtracking features refused unless ``engine="python"``, which
  runs under a timeout (``PatternTimeout``). ``validate_regex`` checks syntax only: a guard that
  takes patterns from policies should compile them with ``compile_policy_regex`` instead.
"""

from __future__ import annotations

from guardproxy.embeddings import DIMENSIONS, CachedEncoder, MiniLMEncoder, Vectors, normalise_rows, shared_encoder
from guardproxy.guards.abandonment import ScanAbandoned, raise_if_abandoned
from guardproxy.guards.base import (
    Finding,
    Guard,
    GuardConfig,
    GuardContext,
    GuardKind,
    Segment,
    Stage,
    UpstreamCallError,
    UpstreamClient,
    validate_regex,
)
from guardproxy.guards.regex_safety import PatternTimeout, PolicyRegex, compile_policy_regex
from guardproxy.guards.registry import REGISTRY, GuardType
from guardproxy.guards.spacy_docs import shared_doc

__all__ = [
    "DIMENSIONS",
    "REGISTRY",
    "CachedEncoder",
    "Finding",
    "Guard",
    "GuardConfig",
    "GuardContext",
    "GuardKind",
    "GuardType",
    "MiniLMEncoder",
    "PatternTimeout",
    "PolicyRegex",
    "ScanAbandoned",
    "Segment",
    "Stage",
    "UpstreamCallError",
    "UpstreamClient",
    "Vectors",
    "compile_policy_regex",
    "normalise_rows",
    "raise_if_abandoned",
    "shared_doc",
    "shared_encoder",
    "validate_regex",
]
