"""Text the trail masked, run again: crediting a live finding from the mark it left.

The audit trail (and a review file made from it) stores each stage's text with every span a
guard found masked, whatever the action or mode: ``<PERSON_1>`` where a name was, ``[LABEL]``
where a keyword matched. A guard that runs on that text again finds nothing there, and counting
that as "it stopped firing" would be wrong. So a live finding whose mark is still in the text is
credited to the checked policy's entry of the same name and guard type, with that entry's action
and mode; an entry the policy no longer has gets no credit. ``replay``, ``eval`` on reviewed rows
and ``test`` on reviewed rows all use this one rule.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from guardproxy.engine import Decision, Verdict, entry_names, verdict_of
from guardproxy.engine.verdict import WHOLE_RUN
from guardproxy.policy import GuardEntry, Policy

Firing = tuple[str, str]  # (entry name, label)
LiveFinding = tuple[str, str, str]  # (entry name, guard type, label) of a finding the live policy made
PII_MASK = "****"  # the PII guard's mask style: it names no label


def placeholder_in(label: str, texts: Iterable[str], guard: str = "") -> bool:
    """Whether a masked finding of ``label`` left its mark in the texts: ``<LABEL_n>``, ``<LABEL>``,
    ``<LABEL:hash>`` (the PII styles), ``[LABEL]`` (the engine's default) or ``[KIND:LABEL]``; for
    the PII guard also its mask, which names no label and so counts for any of its labels."""
    label_re = re.escape(label)
    mark = re.compile(rf"<{label_re}(?:_\d+|:[0-9a-f]+)?>|\[(?:[A-Za-z]+:)?{label_re}\]")
    return any(mark.search(text) or (guard == "pii" and PII_MASK in text) for text in texts)


def credit_masked(found: Iterable[LiveFinding], policy: Policy, entries: Sequence[GuardEntry],
                  texts: Sequence[str], fired: set[Firing]) -> tuple[list[Firing], Verdict]:
    """The firings credited (those not already in ``fired``) and the worst verdict they give
    (``pass`` when none)."""
    by_name = dict(zip(entry_names(entries), entries, strict=True))
    credited: list[Firing] = []
    decisions: list[Decision] = []
    for name, guard, label in found:
        entry = by_name.get(name)
        if entry is None or entry.guard != guard or (name, label) in fired or (name, label) in credited:
            continue
        if placeholder_in(label, texts, guard):
            credited.append((name, label))
            decisions.append(_credited_decision(entry, name, label, policy))
    return credited, verdict_of(decisions)


def _credited_decision(entry: GuardEntry, name: str, label: str, policy: Policy) -> Decision:
    """A credited firing as the decision the engine would have made for it (its span is not known),
    so that ``verdict_of`` alone says what it gives."""
    return Decision(entry.guard, name, label, 1.0, WHOLE_RUN, None, None, entry.action,
                    entry.mode or policy.defaults.mode)
