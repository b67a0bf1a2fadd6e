"""StorageClasses: classes of dynamically provisioned storage (fields at top level, no spec)."""

from __future__ import annotations

from typing import Any

from kybernetes.api.storagehelpers import is_default_class
from kybernetes.registry import _checks
from kybernetes.registry.base import (
    AGE_COLUMN,
    NAME_COLUMN,
    Cause,
    Obj,
    Strategy,
    age_of,
    column,
    forbidden,
    immutable,
    invalid,
    not_supported,
    required,
)

RECLAIM = ("Delete", "Retain")
BINDING_MODES = ("Immediate", "WaitForFirstConsumer")
_SC = "io.k8s.api.storage.v1.StorageClass"


class StorageClassStrategy(Strategy):
    """storage.k8s.io/v1 StorageClass."""

    group = "storage.k8s.io"
    version = "v1"
    kind = "StorageClass"
    resource = "storageclasses"
    singular = "storageclass"
    namespaced = False
    short_names = ("sc",)
    tracks_generation = False
    return_deleted_object = True

    columns = (
        NAME_COLUMN,
        column("Provisioner", doc=(_SC, "provisioner")),
        column("ReclaimPolicy", doc=(_SC, "reclaimPolicy")),
        column("VolumeBindingMode", doc=(_SC, "volumeBindingMode")),
        column("AllowVolumeExpansion", doc=(_SC, "allowVolumeExpansion")),
        AGE_COLUMN,
    )

    def default(self, obj: Obj) -> None:
        obj.setdefault("reclaimPolicy", "Delete")
        obj.setdefault("volumeBindingMode", "Immediate")

    def validate(self, obj: Obj) -> list[Cause]:
        causes: list[Cause] = []
        prov = obj.get("provisioner") or ""
        if not prov:
            causes.append(required("provisioner"))
        else:
            causes += [invalid("provisioner", prov, m) for m in _checks.is_qualified_name(prov.lower())]
        rp = obj.get("reclaimPolicy")
        if rp and rp not in RECLAIM:
            causes.append(not_supported("reclaimPolicy", rp, RECLAIM))
        bm = obj.get("volumeBindingMode")
        if bm and bm not in BINDING_MODES:
            causes.append(not_supported("volumeBindingMode", bm, BINDING_MODES))
        return causes

    def validate_update(self, new: Obj, old: Obj) -> list[Cause]:
        causes = self.validate(new)
        if (new.get("parameters") or {}) != (old.get("parameters") or {}):
            causes.append(forbidden("parameters", "updates to parameters are forbidden."))
        if new.get("provisioner") != old.get("provisioner"):
            causes.append(forbidden("provisioner", "updates to provisioner are forbidden."))
        if new.get("reclaimPolicy") != old.get("reclaimPolicy"):
            causes.append(forbidden("reclaimPolicy", "updates to reclaimPolicy are forbidden."))
        if new.get("volumeBindingMode") != old.get("volumeBindingMode"):
            causes.append(immutable("volumeBindingMode", new.get("volumeBindingMode")))
        return causes

    def row(self, obj: Obj) -> list[Any]:
        name = obj["metadata"]["name"] + (" (default)" if is_default_class(obj) else "")
        return [name, obj.get("provisioner") or "", obj.get("reclaimPolicy") or "Delete",
                obj.get("volumeBindingMode") or "Immediate", bool(obj.get("allowVolumeExpansion")), age_of(obj)]
