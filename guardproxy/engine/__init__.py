"""Running chains of guards over text and deciding what happens (no HTTP here)."""

from guardproxy.engine.core import ChainResult, Engine, GuardRun, entry_names
from guardproxy.engine.verdict import VERDICT_RANK, Decision, GuardFailure, Verdict, verdict_of, worst

__all__ = ["VERDICT_RANK", "ChainResult", "Decision", "Engine", "GuardFailure", "GuardRun", "Verdict",
           "entry_names", "verdict_of", "worst"]
