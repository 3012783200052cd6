"""The policy file schema (version 1), validated with pydantic at load time.

This is the contract policy owners edit; ``policies/README.md`` documents it
key by key. Unknown keys are an error everywhere, including inside a guard's
own settings, which that guard's ``Config`` validates.

A policy file is data: this module imports no guard. The loader passes the
known guard types in the validation context (``GUARD_TYPES``), and a guard
entry asks them for the model that validates its own keys, so checking a
keywords-only policy never imports the PII guard's Presidio.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterator
from typing import Any, Literal, Protocol

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

Mode = Literal["enforce", "monitor"]
OnError = Literal["block", "allow"]
Action = Literal["block", "redact", "flag", "annotate"]

_COMMON_ENTRY_KEYS = {"guard", "action", "name", "mode", "on_error", "timeout_ms", "message", "note"}
GUARD_TYPES = "guard_types"  # the validation context's key for the ``GuardTypes`` the loader passes in
DEFAULT_NOTE = "Note: parts of this answer are not supported by the provided sources."


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Defaults(_Strict):
    mode: Mode = "enforce"
    on_error: OnError = "block"
    timeout_ms: int = Field(2000, gt=0, le=600_000)


class Messages(_Strict):
    """What clients see when a guard blocks."""

    input_blocked: str = "The request was blocked by the content policy."
    output_blocked: str = "The response was withheld by the content policy."


class StreamSettings(_Strict):
    """Streamed answers are released to the client with this many characters held back,
    so that a match spanning two chunks is still caught before any of it leaves."""

    hold_back_chars: int = Field(64, ge=0, le=100_000)


class AuditSettings(_Strict):
    """What the audit trail (``serve --audit``) keeps of this policy's requests. ``text: none``
    keeps no text; ``redacted`` keeps each stage's text with every span a guard found masked.
    Every blocked, redacted or flagged request is written; passed ones at ``sample_passed``."""

    text: Literal["none", "redacted"] = "none"
    sample_passed: float = Field(1.0, ge=0.0, le=1.0)


class GuardTypes(Protocol):
    """The guard types a policy may name, as the loader passes them in (``guardproxy.guards.REGISTRY``
    satisfies this): their names, and for one of them the model of its own keys."""

    def __contains__(self, name: object) -> bool: ...

    def __iter__(self) -> Iterator[str]: ...

    def config_for(self, name: str) -> type[BaseModel]: ...


def _format_guard_errors(guard: str, exc: ValidationError) -> str:
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = f"unknown key for guard '{guard}'"
        parts.append(f"{where}: {message}" if where else message)
    return "; ".join(parts)


class GuardEntry(BaseModel):
    """One guard in a chain: the common keys plus the guard's own keys (``settings``,
    an instance of the guard type's own model)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    guard: str
    action: Action
    name: str | None = None
    mode: Mode | None = None
    on_error: OnError | None = None
    timeout_ms: int | None = Field(None, gt=0, le=600_000)
    message: str | None = None
    note: str | None = None
    settings: BaseModel

    @model_validator(mode="before")
    @classmethod
    def _split_guard_settings(cls, data: Any, info: ValidationInfo) -> Any:
        if not isinstance(data, dict):
            raise ValueError("a guard entry must be a mapping such as {guard: keywords, action: block, ...}")
        if "settings" in data:
            raise ValueError("put the guard's own keys directly in the entry, not under 'settings'")
        guard = data.get("guard")
        if guard is None:
            raise ValueError("missing key 'guard'")
        types: GuardTypes | None = (info.context or {}).get(GUARD_TYPES)
        if types is None:
            raise ValueError("guard entries are validated against the known guard types: "
                             "read policies with guardproxy.policy.load_policy_set or parse_policy")
        if str(guard) not in types:
            raise ValueError(f"unknown guard {guard!r}; known guards: {', '.join(sorted(types))}")
        try:
            config = types.config_for(str(guard))
        except Exception as exc:  # a broken third-party package: a policy error, not a traceback
            raise ValueError(f"guard {guard!r} cannot be loaded: {type(exc).__name__}: {exc}") from None
        common = {k: v for k, v in data.items() if k in _COMMON_ENTRY_KEYS}
        own = {k: v for k, v in data.items() if k not in _COMMON_ENTRY_KEYS}
        try:
            common["settings"] = config.model_validate(own, context=info.context)
        except ValidationError as exc:
            raise ValueError(_format_guard_errors(str(guard), exc)) from None
        return common


class Chain(_Strict):
    input: list[GuardEntry] = []
    output: list[GuardEntry] = []

    @model_validator(mode="after")
    def _annotate_is_for_answers(self) -> Chain:
        if any(entry.action == "annotate" for entry in self.input):
            raise ValueError("input: action 'annotate' appends a note to the answer; use it in output chains")
        return self

    @model_validator(mode="after")
    def _names_unique(self) -> Chain:
        for stage in ("input", "output"):
            names = [entry.name for entry in getattr(self, stage) if entry.name]
            duplicates = sorted({n for n in names if names.count(n) > 1})
            if duplicates:
                raise ValueError(f"{stage}: guard names must be unique in a stage: {', '.join(duplicates)}")
        return self


# The guarded APIs a route can match (``proxy/dialects``' names; a test keeps the two equal).
KNOWN_APIS = ("chat", "completions", "embeddings", "responses", "messages", "count_tokens", "azure_chat",
              "azure_completions", "azure_embeddings")


class Match(_Strict):
    """All given conditions must hold. ``model`` and header values are shell-style globs."""

    model: str | None = None
    header: dict[str, str] = {}
    path: str | None = None
    api: str | None = None  # chat, completions, embeddings, responses, messages, count_tokens, azure_chat, ...

    @model_validator(mode="after")
    def _not_empty(self) -> Match:
        if self.model is None and not self.header and self.path is None and self.api is None:
            raise ValueError("a match needs at least one of 'model', 'header', 'path' or 'api'")
        if self.api is not None and not any(fnmatch.fnmatchcase(api, self.api) for api in KNOWN_APIS):
            raise ValueError(f"api: {self.api!r} matches no API; the APIs are: {', '.join(KNOWN_APIS)}")
        return self


class Route(_Strict):
    match: Match
    chain: str


class Policy(_Strict):
    version: Literal[1]
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    description: str = ""
    defaults: Defaults = Defaults()
    messages: Messages = Messages()
    stream: StreamSettings = StreamSettings()
    unknown_paths: Literal["pass", "deny"] = "deny"
    passthrough: list[str] = []  # globs of /v1/ paths relayed unguarded, whatever the method
    chains: dict[str, Chain]
    routes: list[Route] = []
    # Headers a route may match on: a client can send any header, so only those that a gateway in
    # front of the proxy sets (and strips from clients) may choose a chain.
    trusted_headers: list[str] = []
    audit: AuditSettings = AuditSettings()
    # A policy file or directory (relative to this file) run in monitor mode on the same traffic, after
    # the live decision and off the request path, on a sample of requests (shadow_sample).
    shadow: str | None = Field(None, min_length=1)
    shadow_sample: float = Field(1.0, ge=0.0, le=1.0)

    @field_validator("chains")
    @classmethod
    def _has_default_chain(cls, chains: dict[str, Chain]) -> dict[str, Chain]:
        if "default" not in chains:
            raise ValueError("a chain named 'default' is required: requests that match no route use it")
        return chains

    @model_validator(mode="after")
    def _routes_name_chains(self) -> Policy:
        for index, route in enumerate(self.routes):
            if route.chain not in self.chains:
                known = ", ".join(sorted(self.chains))
                raise ValueError(f"routes.{index}.chain: no chain named {route.chain!r}; chains are: {known}")
        trusted = {name.lower() for name in self.trusted_headers}
        for index, route in enumerate(self.routes):
            for name in route.match.header:
                if name.lower() not in trusted:
                    raise ValueError(
                        f"routes.{index}.match.header: {name!r} is not in trusted_headers. Any client can send "
                        f"any header and so pick this chain; if a gateway in front of the proxy sets {name!r} "
                        f"(and drops the client's), add it: trusted_headers: [{name}]")
        return self
