"""Leases: leader election and node heartbeats."""

from __future__ import annotations

from kybernetes.registry.base import Strategy


class LeaseStrategy(Strategy):
    """coordination.k8s.io/v1 Lease."""

    group = "coordination.k8s.io"
    version = "v1"
    kind = "Lease"
    resource = "leases"
    singular = "lease"
