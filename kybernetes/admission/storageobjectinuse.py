"""StorageObjectInUseProtection admission (upstream plugin/pkg/admission/storage/
storageobjectinuseprotection): every new PersistentVolume gets the
`kubernetes.io/pv-protection` finalizer and every new PersistentVolumeClaim the
`kubernetes.io/pvc-protection` one, so the protection controllers can hold their deletion
while they are in use.  Only creates of the main resources are touched."""

from __future__ import annotations

from typing import Any, Optional

from kybernetes.admission import lookup

Obj = dict[str, Any]

PV_PROTECTION_FINALIZER = "kubernetes.io/pv-protection"
PVC_PROTECTION_FINALIZER = "kubernetes.io/pvc-protection"
_FINALIZERS = {"persistentvolumes": PV_PROTECTION_FINALIZER, "persistentvolumeclaims": PVC_PROTECTION_FINALIZER}


def add_finalizer(obj: Obj, finalizer: str) -> None:
    """Append `finalizer` unless the object already carries it."""
    md = obj.setdefault("metadata", {})
    fins = list(md.get("finalizers") or [])
    if finalizer not in fins:
        md["finalizers"] = fins + [finalizer]


class StorageObjectInUseProtection:
    name = "StorageObjectInUseProtection"

    async def admit(self, op: str, r: Any, new: Optional[Obj], old: Optional[Obj]) -> None:
        s = r.strategy
        if op != "CREATE" or new is None or s.group or lookup.subresource(r):
            return
        finalizer = _FINALIZERS.get(s.resource)
        if finalizer is not None:
            add_finalizer(new, finalizer)
