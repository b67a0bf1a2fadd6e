"""LimitRanges: per-namespace resource defaults and bounds."""

from __future__ import annotations

from kybernetes.registry.base import Strategy


class LimitRangeStrategy(Strategy):
    """core/v1 LimitRange."""

    group = ""
    version = "v1"
    kind = "LimitRange"
    resource = "limitranges"
    singular = "limitrange"
    short_names = ("limits",)
