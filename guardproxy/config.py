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
    max_body_bytes: int = 20 * 1024 * 1024
    upstream_timeout: float = 600.0
    connect_timeout: float = 10.0
    max_connections: int = 1000
    guard_threads: int = 4
    watch: bool = True
    metrics: bool = True
    trace_content: str = "off"  # "redacted": spans get each stage's text after redaction
    log_level: str = "info"

    @property
    def upstream_base(self) -> str:
        return self.upstream.rstrip("/")

    def upstream_key(self, environ: Mapping[str, str]) -> str | None:
        """The key that replaces the client's ``Authorization``, read from the
        variable the operator named (the key itself is never a flag)."""
        if not self.upstream_key_env:
            return None
        key = environ.get(self.upstream_key_env)
        if not key:
            raise ValueError(f"--upstream-key-env names {self.upstream_key_env}, which is not set or empty")
        return key

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
                values[f.name] = raw or None if f.name == "upstream_key_env" else raw
        return cls(**values)  # type: ignore[arg-type]

    def to_env(self) -> dict[str, str]:
        """For worker processes, which build their app from the environment."""
        out = {}
        for name, value in asdict(self).items():
            if value is not None:
                out[env_name(name)] = str(value).lower() if isinstance(value, bool) else str(value)
        return out


def env_name(field_name: str) -> str:
    return "GUARDPROXY_" + field_name.upper()


def settings_from_environment() -> Settings:
    return Settings.from_env(os.environ)
