"""The translation's tree written out as RE2 text. Marker groups are the only capturing groups."""

from __future__ import annotations

from guardproxy.guards.re2_translation.charsets import NEVER_CLASS, emit_charset, emit_literal
from guardproxy.guards.re2_translation.tree import Alt, At, Chars, Group, Lit, Mark, Node, Raw, Seq


class Emitter:
    """Writes trees as RE2 text, numbering the marker groups it writes."""

    def __init__(self) -> None:
        self.groups = 0
        self.starts: list[int] = []
        self.ends: list[int] = []

    def seq(self, seq: Seq) -> str:
        return "".join(self.node(node) for node in seq)

    def node(self, node: Node) -> str:
        if isinstance(node, Lit):
            return emit_literal(node.char)
        if isinstance(node, Chars):
            return emit_charset(node.charset) if node.charset else NEVER_CLASS
        if isinstance(node, At | Raw):
            return node.code if isinstance(node, At) else node.text
        if isinstance(node, Mark):
            self.groups += 1
            (self.ends if node.end else self.starts).append(self.groups)
            return "()"
        if isinstance(node, Group):
            opening = {None: "(?:", True: "(?i:", False: "(?-i:"}[node.ignore_case]
            return f"{opening}{self.seq(node.body)})"
        if isinstance(node, Alt):
            return "(?:" + "|".join(self.seq(branch) for branch in node.branches) + ")"
        body = self.seq(node.body)
        if not (len(node.body) == 1 and isinstance(node.body[0], Lit | Chars | Group | Alt)):
            body = f"(?:{body})"
        return body + _quantifier(node.low, node.high) + ("?" if node.lazy else "")


def _quantifier(low: int, high: int | None) -> str:
    if high is None:
        return {0: "*", 1: "+"}.get(low, f"{{{low},}}")
    if (low, high) == (0, 1):
        return "?"
    return f"{{{low}}}" if low == high else f"{{{low},{high}}}"
