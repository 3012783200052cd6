"""Policy files: schema, loading, selection and reload."""

from guardproxy.policy.loader import PolicyError, load_policy_set
from guardproxy.policy.schema import Chain, GuardEntry, Policy
from guardproxy.policy.policyset import LoadedPolicy, PolicySet, RouteChoice

__all__ = [
    "Chain",
    "GuardEntry",
    "LoadedPolicy",
    "Policy",
    "PolicyError",
    "PolicySet",
    "RouteChoice",
    "load_policy_set",
]
