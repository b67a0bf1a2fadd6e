"""PersistentVolumes: cluster storage provisioned by an admin or a provisioner."""

from __future__ import annotations

from kybernetes.registry.base import Strategy


class PersistentVolumeStrategy(Strategy):
    """core/v1 PersistentVolume."""

    group = ""
    version = "v1"
    kind = "PersistentVolume"
    resource = "persistentvolumes"
    singular = "persistentvolume"
    namespaced = False
    short_names = ("pv",)
    subresources = ("status",)
    has_status_split = True
