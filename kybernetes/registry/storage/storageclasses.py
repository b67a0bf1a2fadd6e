"""StorageClasses: classes of dynamically provisioned storage."""

from __future__ import annotations

from kybernetes.registry.base import Strategy


class StorageClassStrategy(Strategy):
    """storage.k8s.io/v1 StorageClass."""

    group = "storage.k8s.io"
    version = "v1"
    kind = "StorageClass"
    resource = "storageclasses"
    singular = "storageclass"
    namespaced = False
    short_names = ("sc",)
