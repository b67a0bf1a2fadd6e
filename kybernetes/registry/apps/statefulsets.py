"""StatefulSets: pods with stable identities and storage."""

from __future__ import annotations

from kybernetes.registry.base import Strategy


class StatefulSetStrategy(Strategy):
    """apps/v1 StatefulSet."""

    group = "apps"
    version = "v1"
    kind = "StatefulSet"
    resource = "statefulsets"
    singular = "statefulset"
    short_names = ("sts",)
    categories = ("all",)
    subresources = ("status", "scale")
    has_status_split = True
