"""CSIStorageCapacities: capacity a CSI driver reports per topology segment."""

from __future__ import annotations

from kybernetes.registry.base import Strategy


class CSIStorageCapacityStrategy(Strategy):
    """storage.k8s.io/v1 CSIStorageCapacity."""

    group = "storage.k8s.io"
    version = "v1"
    kind = "CSIStorageCapacity"
    resource = "csistoragecapacities"
    singular = "csistoragecapacity"
