"""NetworkPolicies: which traffic may reach and leave pods."""

from __future__ import annotations

from kybernetes.registry.base import Strategy


class NetworkPolicyStrategy(Strategy):
    """networking.k8s.io/v1 NetworkPolicy."""

    group = "networking.k8s.io"
    version = "v1"
    kind = "NetworkPolicy"
    resource = "networkpolicies"
    singular = "networkpolicy"
    short_names = ("netpol",)
