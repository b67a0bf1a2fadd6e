"""ReplicationControllers: the legacy replica manager."""

from __future__ import annotations

from kybernetes.registry.base import Strategy


class ReplicationControllerStrategy(Strategy):
    """core/v1 ReplicationController."""

    group = ""
    version = "v1"
    kind = "ReplicationController"
    resource = "replicationcontrollers"
    singular = "replicationcontroller"
    short_names = ("rc",)
    categories = ("all",)
    subresources = ("status", "scale")
    has_status_split = True
