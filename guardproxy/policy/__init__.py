"""Policy files: schema, loading, selection and reload."""

from guardproxy.policy.loader import PolicyError, load_policy_set
from guardproxy.policy.policyset import LoadedPolicy, PolicySet, RouteChoice
from guardproxy.policy.schema import Chain, GuardEntry, Policy
from guardproxy.policy.shadows import ShadowPolicy

__all__ = [
    "Chain",
    "GuardEntry",
    "LoadedPolicy",
    "Policy",
    "PolicyError",
    "PolicySet",
    "RouteChoice",
    "ShadowPolicy",
    "load_policy_set",
]
