"""``guard: topics`` policy keys, each with its documented default."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from guardproxy.guards.base import GuardConfig

Method = Literal["keywords", "semantic", "llm"]
Calibration = Literal["traffic", "none"]

# For ``method: semantic`` with ``calibration: traffic``: what a fit held to precision 0.90 on one source
# picks for the other, CLINC150 and BANKING77 in turn (benchmarks/loso.py topics --min-precision 0.9).
DEFAULT_THRESHOLD = 0.48
DEFAULT_KEYWORD_BOOST = 0.1
# ``calibration: traffic``: recent whole-text scores kept per topic, and the most they may lower a score
# (``calibration.py``); chosen leave-one-source-out on CLINC150 and BANKING77 (benchmarks/loso.py topics).
DEFAULT_CALIBRATION_WINDOW = 256
DEFAULT_CALIBRATION_MAX_SHIFT = 0.2


def _not_blank(values: list[str], key: str) -> list[str]:
    for value in values:
        if not value.strip():
            raise ValueError(f"{key} must not contain empty strings")
    return values


class Topic(BaseModel):
    """One banned topic. ``name`` is the finding's label, so errors and metrics say which topic was hit."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$")
    description: str = Field(min_length=1)
    examples: list[str] = Field([], max_length=50, description="short sentences that are on this topic")
    keywords: list[str] = Field([], max_length=200, description="words or phrases, matched on lemmas")

    @field_validator("examples")
    @classmethod
    def _examples_not_blank(cls, examples: list[str]) -> list[str]:
        return _not_blank(examples, "examples")

    @field_validator("keywords")
    @classmethod
    def _keywords_not_blank(cls, keywords: list[str]) -> list[str]:
        return _not_blank(keywords, "keywords")


class TopicsConfig(GuardConfig):
    topics: list[Topic] = Field(min_length=1)
    method: Method = "semantic"
    threshold: float = Field(DEFAULT_THRESHOLD, ge=0, le=1)
    keyword_boost: float = Field(DEFAULT_KEYWORD_BOOST, ge=0, le=1)
    calibration: Calibration = "traffic"
    calibration_window: int = Field(DEFAULT_CALIBRATION_WINDOW, ge=16, le=100_000)
    calibration_max_shift: float = Field(DEFAULT_CALIBRATION_MAX_SHIFT, ge=0, le=1)
    window_sentences: int = Field(2, ge=0, le=20)
    window_embedding: Literal["composed", "encoded"] = "composed"
    roles: list[str] | None = None
    cache_size: int = Field(4096, ge=0, le=1_000_000)
    language: Literal["en"] = "en"
    judge_model: str | None = None
    judge_timeout_ms: int = Field(1500, gt=0, le=600_000)

    @model_validator(mode="after")
    def _method_has_what_it_needs(self) -> TopicsConfig:
        names = [topic.name for topic in self.topics]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"topic names must be unique; repeated: {', '.join(duplicates)}")
        if self.method == "llm" and not self.judge_model:
            raise ValueError("method: llm needs judge_model (the upstream model that answers as the judge)")
        if self.method == "keywords":
            bare = [topic.name for topic in self.topics if not topic.keywords]
            if bare:
                raise ValueError(f"method: keywords needs keywords for every topic; missing for: {', '.join(bare)}")
        return self
