"""DaemonSets: one pod per eligible node."""

from __future__ import annotations

from kybernetes.registry.base import Strategy


class DaemonSetStrategy(Strategy):
    """apps/v1 DaemonSet."""

    group = "apps"
    version = "v1"
    kind = "DaemonSet"
    resource = "daemonsets"
    singular = "daemonset"
    short_names = ("ds",)
    categories = ("all",)
    subresources = ("status",)
    has_status_split = True
