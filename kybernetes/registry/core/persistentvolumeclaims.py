"""PersistentVolumeClaims: a user's request for storage."""

from __future__ import annotations

from kybernetes.registry.base import Strategy


class PersistentVolumeClaimStrategy(Strategy):
    """core/v1 PersistentVolumeClaim."""

    group = ""
    version = "v1"
    kind = "PersistentVolumeClaim"
    resource = "persistentvolumeclaims"
    singular = "persistentvolumeclaim"
    short_names = ("pvc",)
    subresources = ("status",)
    has_status_split = True
