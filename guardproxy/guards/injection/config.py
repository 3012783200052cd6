"""``guard: injection`` policy keys, each with its documented default.

The default thresholds are chosen by ``training/injection_head.py`` on out-of-fold scores of the
data it fits: the lowest threshold at which no ordinary-text source (``threshold``) or document
carrier (``indirect_threshold``) has more than 2% false positives. ``BLOCK_THRESHOLD`` is the
high-confidence threshold the default policy blocks at (0.5% false positives, chosen the same way).
"""

from __future__ import annotations

from pydantic import Field, field_validator, model_validator

from guardproxy.guards.base import GuardConfig

DEFAULT_THRESHOLD = 0.9731
DEFAULT_INDIRECT_THRESHOLD = 0.9394
BLOCK_THRESHOLD = 0.9955
DEFAULT_CONTEXT_TAGS = ["document", "documents", "context", "source", "search_results", "search_result",
                        "tool_result", "tool_output", "email", "webpage", "article", "retrieved", "data"]


class InjectionConfig(GuardConfig):
    threshold: float = Field(DEFAULT_THRESHOLD, ge=0, le=1)
    indirect_threshold: float = Field(DEFAULT_INDIRECT_THRESHOLD, ge=0, le=1)
    direct: bool = True
    indirect: bool = True
    direct_roles: list[str] = ["user"]
    indirect_roles: list[str] = ["tool", "function"]
    context_tags: list[str] = DEFAULT_CONTEXT_TAGS
    min_chars: int = Field(8, ge=1, le=100_000)
    window_chars: int = Field(200, ge=40, le=5000)
    cache_size: int = Field(4096, ge=0, le=1_000_000)

    @field_validator("direct_roles", "indirect_roles", "context_tags")
    @classmethod
    def _names_not_blank(cls, names: list[str]) -> list[str]:
        for name in names:
            if not name.strip() or name != name.strip():
                raise ValueError(f"{name!r} is blank or has spaces around it")
        return names

    @model_validator(mode="after")
    def _something_to_scan(self) -> InjectionConfig:
        if not self.direct and not self.indirect:
            raise ValueError("direct and indirect are both false: the guard would scan nothing")
        overlap = set(self.direct_roles) & set(self.indirect_roles)
        if overlap:
            raise ValueError(f"roles {sorted(overlap)} are in both direct_roles and indirect_roles")
        return self
