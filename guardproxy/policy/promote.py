"""``guardproxy promote LIVE.yaml``: make a policy's shadow live, and the live one its shadow.

The two files swap their rules; each keeps its own ``name:`` line, and the live file keeps
its ``shadow:``/``shadow_sample:`` lines, so routes, client keys and dashboards that name the
live policy go on working, and the old rules are now what the shadow measures. Running it
again swaps back: rolling back is the same operation. A running proxy picks the change up
through its normal hot reload (the files are replaced atomically, the shadow first), and
rejects it, keeping the last good policy, if the result does not load.

Both texts are validated before anything is written. The swap works on top-level lines, so
``name``, ``shadow`` and ``shadow_sample`` must each be written on one line of their own.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from guardproxy.policy.loader import PolicyError, parse_policy
from guardproxy.policy.shadows import shadow_path

_NAME = re.compile(r"^name:[^\n]*\n?", re.MULTILINE)
_SHADOW_KEYS = re.compile(r"^shadow(?:_sample)?:[^\n]*\n?", re.MULTILINE)


@dataclass(frozen=True)
class Promotion:
    live: Path
    shadow: Path
    live_name: str
    shadow_name: str


def _one_line(pattern: re.Pattern[str], text: str, what: str, source: Path) -> str:
    found = pattern.findall(text)
    if len(found) != 1:
        raise PolicyError([f"{source}: promote needs exactly one top-level {what!r} line, found {len(found)}"])
    line: str = found[0]
    return line if line.endswith("\n") else line + "\n"


def _swapped(rules_from: str, name_line: str, extra_lines: str) -> str:
    """``rules_from`` with its name line replaced by ``name_line`` followed by ``extra_lines``, and
    without shadow keys of its own."""
    body = _SHADOW_KEYS.sub("", rules_from)
    return _NAME.sub(lambda _: name_line + extra_lines, body, count=1)


def plan_promotion(live_file: str | Path) -> tuple[Promotion, str, str]:
    """The promotion and the two new texts (live, shadow), validated; nothing is written."""
    live = Path(live_file)
    if not live.is_file():
        raise PolicyError([f"{live}: promote takes the live policy's file"])
    live_text = live.read_text(encoding="utf-8")
    live_policy = parse_policy(live_text, str(live))
    if live_policy.shadow is None:
        raise PolicyError([f"{live}: this policy names no shadow (shadow: PATH) to promote"])
    shadow = shadow_path(str(live), live_policy.shadow)
    if not shadow.is_file():
        raise PolicyError([f"{shadow}: promote needs the shadow to be one file, not a directory"])
    shadow_text = shadow.read_text(encoding="utf-8")
    shadow_policy = parse_policy(shadow_text, str(shadow))
    live_name = _one_line(_NAME, live_text, "name", live)
    shadow_name = _one_line(_NAME, shadow_text, "name", shadow)
    live_shadow_keys = "".join(_SHADOW_KEYS.findall(live_text))
    new_live = _swapped(shadow_text, live_name, live_shadow_keys)
    new_shadow = _swapped(live_text, shadow_name, "")
    problems = []
    for text, source in ((new_live, live), (new_shadow, shadow)):
        try:
            parse_policy(text, f"{source} (after promote)")
        except PolicyError as exc:
            problems.extend(exc.problems)
    if problems:
        raise PolicyError(problems)
    return Promotion(live, shadow, live_policy.name, shadow_policy.name), new_live, new_shadow


def _replace(path: Path, text: str) -> None:
    with tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=path.parent, prefix=f".{path.name}.",
                                     delete=False) as temporary:
        temporary.write(text)
    os.chmod(temporary.name, path.stat().st_mode & 0o777)
    os.replace(temporary.name, path)


def promote(live_file: str | Path) -> Promotion:
    """Swap the live policy's rules with its shadow's (see the module's docstring)."""
    promotion, new_live, new_shadow = plan_promotion(live_file)
    _replace(promotion.shadow, new_shadow)
    _replace(promotion.live, new_live)
    return promotion
