"""PriorityClasses: names for pod priority values."""

from __future__ import annotations

from kybernetes.registry.base import Strategy


class PriorityClassStrategy(Strategy):
    """scheduling.k8s.io/v1 PriorityClass."""

    group = "scheduling.k8s.io"
    version = "v1"
    kind = "PriorityClass"
    resource = "priorityclasses"
    singular = "priorityclass"
    namespaced = False
    short_names = ("pc",)
