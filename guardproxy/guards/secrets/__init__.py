"""``guard: secrets``: credentials found by their published formats (gitleaks' rule list, and a few
rules from detect-secrets, as data in ``data/rules.json``), redacted as ``[SECRET:<kind>]``."""

from guardproxy.guards.registry import GuardType
from guardproxy.guards.secrets.config import SecretsConfig

GUARD_TYPE = GuardType(SecretsConfig, "guardproxy.guards.secrets.guard:SecretsGuard")

__all__ = ["GUARD_TYPE"]
