"""Text the live policy redacted, run again: crediting a redaction from the mark it left.

An audit trail (and a review file made from it) stores text *after* redaction, so a redacting
guard that runs on it again sees ``<PERSON_1>`` where the name was and finds nothing. Counting
that as "the redaction stopped" would be wrong. Instead, a live enforced redaction whose
placeholder is still in the text is credited to the checked policy's entry of the same name and
guard type, with that entry's action and mode; an entry the policy no longer has gets no credit.
``replay``, ``eval`` on reviewed rows and ``test`` on reviewed rows all use this one rule.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from guardproxy.engine import Verdict, entry_names, worst
from guardproxy.policy import GuardEntry, Policy

Firing = tuple[str, str]  # (entry name, label)
Redaction = tuple[str, str, str]  # (entry name, guard type, label) of a live enforced redaction


def placeholder_in(label: str, texts: Iterable[str]) -> bool:
    """Whether a redaction of ``label`` left its mark in the texts: ``<LABEL_n>``, ``<LABEL>``,
    ``<LABEL:hash>`` (the PII styles), ``[LABEL]`` (the engine's default) or the PII mask ``****``,
    which names no label and so counts for any."""
    mark = re.compile(rf"<{re.escape(label)}(?:_\d+|:[0-9a-f]+)?>|\[{re.escape(label)}\]|\*\*\*\*")
    return any(mark.search(text) for text in texts)


def credit_redactions(redactions: Iterable[Redaction], policy: Policy, entries: Sequence[GuardEntry],
                      texts: Sequence[str], fired: set[Firing]) -> tuple[list[Firing], Verdict]:
    """The firings credited (those not already in ``fired``) and the worst verdict they give
    (``pass`` when none)."""
    by_name = dict(zip(entry_names(entries), entries, strict=True))
    credited: list[Firing] = []
    verdict: Verdict = "pass"
    for name, guard, label in redactions:
        entry = by_name.get(name)
        if entry is None or entry.guard != guard or (name, label) in fired or (name, label) in credited:
            continue
        if placeholder_in(label, texts):
            credited.append((name, label))
            verdict = worst(verdict, verdict_of_entry(entry, policy))
    return credited, verdict


def verdict_of_entry(entry: GuardEntry, policy: Policy) -> Verdict:
    """The verdict one finding of this entry gives on its own."""
    if (entry.mode or policy.defaults.mode) != "enforce":
        return "flagged"
    if entry.action == "block":
        return "blocked"
    return "redacted" if entry.action == "redact" else "flagged"
