"""``guard: injection``: prompt injection and jailbreaks in user messages (direct), and instructions
to the model planted in tool results, delimited context blocks and ``guardproxy.context`` documents
(indirect).

Signals: logistic heads on MiniLM window embeddings plus structural signals (``signals.py``).
Labels: ``jailbreak``, ``prompt_injection``, ``indirect_injection``.
"""

from guardproxy.guards.injection.config import InjectionConfig
from guardproxy.guards.registry import GuardType

GUARD_TYPE = GuardType(InjectionConfig, "guardproxy.guards.injection.guard:InjectionGuard")

__all__ = ["GUARD_TYPE"]
