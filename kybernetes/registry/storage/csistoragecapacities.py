"""CSIStorageCapacities: the capacity a CSI driver reports per topology segment.

Upstream's printer has no AGE column for this kind."""

from __future__ import annotations

from typing import Any

from kybernetes.registry import _checks
from kybernetes.registry.base import NAME_COLUMN, Cause, Obj, Strategy, column, invalid, required

_C = "io.k8s.api.storage.v1.CSIStorageCapacity"


class CSIStorageCapacityStrategy(Strategy):
    """storage.k8s.io/v1 CSIStorageCapacity."""

    group = "storage.k8s.io"
    version = "v1"
    kind = "CSIStorageCapacity"
    resource = "csistoragecapacities"
    singular = "csistoragecapacity"
    tracks_generation = False

    columns = (NAME_COLUMN, column("StorageClassName", doc=(_C, "storageClassName")),
               column("Capacity", doc=(_C, "capacity")))

    def validate(self, obj: Obj) -> list[Cause]:
        sc = obj.get("storageClassName") or ""
        if not sc:
            return [required("storageClassName")]
        return [invalid("storageClassName", sc, m) for m in _checks.is_dns1123_subdomain(sc)]

    def row(self, obj: Obj) -> list[Any]:
        cap = obj.get("capacity")
        return [obj["metadata"]["name"], obj.get("storageClassName") or "", str(cap) if cap is not None else "<unset>"]
