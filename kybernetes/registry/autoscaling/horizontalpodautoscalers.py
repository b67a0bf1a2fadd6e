"""HorizontalPodAutoscalers: scale a workload on metrics."""

from __future__ import annotations

from kybernetes.registry.base import Strategy


class HorizontalPodAutoscalerStrategy(Strategy):
    """autoscaling/v2 HorizontalPodAutoscaler."""

    group = "autoscaling"
    version = "v2"
    kind = "HorizontalPodAutoscaler"
    resource = "horizontalpodautoscalers"
    singular = "horizontalpodautoscaler"
    short_names = ("hpa",)
    categories = ("all",)
    subresources = ("status",)
    has_status_split = True
