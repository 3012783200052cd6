"""Operator settings: CLI flags, each with a matching ``GUARDPROXY_*`` environment variable."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields


@dataclass(frozen=True)
class Settings:
    upstream: str = "https://api.openai.com/v1"
    policy: str = "policies"
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 1
    upstream_key_env: str | None = None
    anthropic_upstream: str | None = None  # the Anthropic SDK's base_url form, without /v1
    anthropic_key_env: str | None = None
    azure_upstream: str | None = None  # https://RESOURCE.openai.azure.com
    azure_key_env: str | None = None
    keys_file: str | None = None  # client keys bound to chains; unset: the proxy is open to whoever reaches it
    admin_key_env: str | None = None  # the key /v1/guardrails/check (and any admin endpoint) requires
    metrics_port: int = 0  # 0: /metrics on the public port; else on its own listener
    upstream_retries: int = 0  # retries of a connect error or a 502/503 before any byte
    max_body_bytes: int = 20 * 1024 * 1024
    upstream_timeout: float = 600.0
    connect_timeout: float = 10.0
    max_connections: int = 1000
    guard_threads: int = 4
    watch: bool = True
    metrics: bool = True
    trace_content: str = "off"  # "redacted": spans get each stage's text after redaction
    audit: str | None = None  # the audit trail: a file (rotated by size) or "-" for standard output
    audit_max_bytes: int = 100 * 1024 * 1024
    audit_keep: int = 5  # rotated files kept besides the current one
    audit_otlp: bool = False  # also emit each record as an OpenTelemetry log record
    log_level: str = "info"

    @property
    def upstream_base(self) -> str:
        return self.upstream.rstrip("/")

    def upstream_base_of(self, upstream: str) -> str | None:
        """The base URL of an upstream (openai, anthropic, azure). The Anthropic API goes to
        ``--upstream``'s origin when ``--anthropic-upstream`` is not set, so a server that
        speaks both (the demo, LiteLLM, vLLM) needs one flag; Azure's deployments need theirs."""
        if upstream == "anthropic":
            if self.anthropic_upstream:
                return self.anthropic_upstream.rstrip("/")
            return self.upstream_base.removesuffix("/v1")
        if upstream == "azure":
            return self.azure_upstream.rstrip("/") if self.azure_upstream else None
        return self.upstream_base

    def upstream_keys(self, environ: Mapping[str, str]) -> dict[str, str]:
        """Per upstream (openai, anthropic, azure), the operator's key that replaces the client's,
        read from the variable the operator named (a key itself is never a flag)."""
        keys = {"openai": _key(environ, self.upstream_key_env, "--upstream-key-env"),
                "anthropic": _key(environ, self.anthropic_key_env, "--anthropic-key-env"),
                "azure": _key(environ, self.azure_key_env, "--azure-key-env")}
        return {name: key for name, key in keys.items() if key is not None}

    def admin_key(self, environ: Mapping[str, str]) -> str | None:
        """The key admin endpoints require, read from the variable ``--admin-key-env`` names."""
        return _key(environ, self.admin_key_env, "--admin-key-env")

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        values: dict[str, object] = {}
        for f in fields(cls):
            raw = environ.get(env_name(f.name))
            if raw is None:
                continue
            default = getattr(cls, f.name)
            if isinstance(default, bool):
                values[f.name] = raw.strip().lower() in ("1", "true", "yes", "on")
            elif isinstance(default, int):
                values[f.name] = int(raw)
            elif isinstance(default, float):
                values[f.name] = float(raw)
            else:
                values[f.name] = raw or None if default is None else raw
        return cls(**values)  # type: ignore[arg-type]

    def to_env(self) -> dict[str, str]:
        """For worker processes, which build their app from the environment."""
        out = {}
        for name, value in asdict(self).items():
            if value is not None:
                out[env_name(name)] = str(value).lower() if isinstance(value, bool) else str(value)
        return out


def _key(environ: Mapping[str, str], variable: str | None, flag: str) -> str | None:
    if not variable:
        return None
    key = environ.get(variable)
    if not key:
        raise ValueError(f"{flag} names {variable}, which is not set or empty")
    return key


def env_name(field_name: str) -> str:
    return "GUARDPROXY_" + field_name.upper()


def settings_from_environment() -> Settings:
    return Settings.from_env(os.environ)
