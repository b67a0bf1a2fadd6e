"""ServiceCIDRs: ranges service IPs are allocated from."""

from __future__ import annotations

from kybernetes.registry.base import Strategy


class ServiceCIDRStrategy(Strategy):
    """networking.k8s.io/v1 ServiceCIDR."""

    group = "networking.k8s.io"
    version = "v1"
    kind = "ServiceCIDR"
    resource = "servicecidrs"
    singular = "servicecidr"
    namespaced = False
    subresources = ("status",)
    has_status_split = True
