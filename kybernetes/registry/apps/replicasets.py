"""ReplicaSets: keep N identical pods running."""

from __future__ import annotations

from kybernetes.registry.base import Strategy


class ReplicaSetStrategy(Strategy):
    """apps/v1 ReplicaSet."""

    group = "apps"
    version = "v1"
    kind = "ReplicaSet"
    resource = "replicasets"
    singular = "replicaset"
    short_names = ("rs",)
    categories = ("all",)
    subresources = ("status", "scale")
    has_status_split = True
