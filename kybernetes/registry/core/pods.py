"""Pods: the unit of scheduling; also their status and binding subresources."""

from __future__ import annotations

from kybernetes.registry.base import Strategy


class PodStrategy(Strategy):
    """core/v1 Pod."""

    group = ""
    version = "v1"
    kind = "Pod"
    resource = "pods"
    singular = "pod"
    short_names = ("po",)
    categories = ("all",)
    subresources = ("status", "binding")
    # upstream also serves these; routed once their handlers exist
    future_subresources = (
        "attach", "ephemeralcontainers", "eviction", "exec", "log", "portforward", "proxy", "resize",
    )
    has_status_split = True
