"""Services: stable virtual IPs and names in front of pods."""

from __future__ import annotations

from kybernetes.registry.base import Strategy


class ServiceStrategy(Strategy):
    """core/v1 Service."""

    group = ""
    version = "v1"
    kind = "Service"
    resource = "services"
    singular = "service"
    short_names = ("svc",)
    categories = ("all",)
    subresources = ("status",)
    future_subresources = ("proxy",)
    name_format = "dns1123-label"
    has_status_split = True
