"""CSIDrivers: properties of an installed CSI driver."""

from __future__ import annotations

from typing import Any

from kybernetes.api.goformat import go_quote
from kybernetes.registry.base import (
    AGE_COLUMN,
    NAME_COLUMN,
    Cause,
    Obj,
    Strategy,
    age_of,
    column,
    dig,
    immutable,
    not_supported,
)

FS_GROUP_POLICIES = ("File", "None", "ReadWriteOnceWithFSType")
LIFECYCLE_MODES = ("Ephemeral", "Persistent")
_SPEC = "io.k8s.api.storage.v1.CSIDriverSpec"


class CSIDriverStrategy(Strategy):
    """storage.k8s.io/v1 CSIDriver."""

    group = "storage.k8s.io"
    version = "v1"
    kind = "CSIDriver"
    resource = "csidrivers"
    singular = "csidriver"
    namespaced = False
    tracks_generation = False
    return_deleted_object = True

    columns = (
        NAME_COLUMN,
        column("AttachRequired", "boolean", (_SPEC, "attachRequired")),
        column("PodInfoOnMount", "boolean", (_SPEC, "podInfoOnMount")),
        column("StorageCapacity", "boolean", (_SPEC, "storageCapacity")),
        column("TokenRequests", doc=(_SPEC, "tokenRequests")),
        column("RequiresRepublish", "boolean", (_SPEC, "requiresRepublish")),
        column("Modes", doc=(_SPEC, "volumeLifecycleModes")),
        AGE_COLUMN,
    )

    def default(self, obj: Obj) -> None:
        spec = obj.setdefault("spec", {})
        spec.setdefault("attachRequired", True)
        spec.setdefault("podInfoOnMount", False)
        spec.setdefault("storageCapacity", False)
        spec.setdefault("fsGroupPolicy", "ReadWriteOnceWithFSType")
        spec.setdefault("requiresRepublish", False)
        spec.setdefault("seLinuxMount", False)
        if not spec.get("volumeLifecycleModes"):
            spec["volumeLifecycleModes"] = ["Persistent"]

    def validate(self, obj: Obj) -> list[Cause]:
        spec = obj.get("spec") or {}
        causes: list[Cause] = []
        fsg = spec.get("fsGroupPolicy")
        if fsg is not None and fsg not in FS_GROUP_POLICIES:
            causes.append(not_supported("spec.fsGroupPolicy", fsg, FS_GROUP_POLICIES))
        for i, m in enumerate(spec.get("volumeLifecycleModes") or []):
            if m not in LIFECYCLE_MODES:
                causes.append(not_supported(f"spec.volumeLifecycleModes[{i}]", m, LIFECYCLE_MODES))
        return causes

    def validate_update(self, new: Obj, old: Obj) -> list[Cause]:
        """upstream ValidateCSIDriverUpdate: attachRequired and volumeLifecycleModes are fixed
        (podInfoOnMount, fsGroupPolicy and the rest may change)."""
        causes = self.validate(new)
        # upstream's path for attachRequired really is spelled "attachedRequired"
        if dig(new, "spec", "attachRequired") != dig(old, "spec", "attachRequired"):
            causes.append(immutable("spec.attachedRequired", dig(new, "spec", "attachRequired")))
        modes = dig(new, "spec", "volumeLifecycleModes")
        if modes != dig(old, "spec", "volumeLifecycleModes"):
            rendered = "[]storage.VolumeLifecycleMode{" + ", ".join(go_quote(m) for m in modes or []) + "}"
            causes.append(Cause("FieldValueInvalid", "spec.volumeLifecycleModes",
                                f"Invalid value: {rendered}: field is immutable"))
        return causes

    def row(self, obj: Obj) -> list[Any]:
        spec = obj.get("spec") or {}
        tokens = spec.get("tokenRequests")
        return [
            obj["metadata"]["name"],
            spec.get("attachRequired", True) is not False,
            bool(spec.get("podInfoOnMount")),
            bool(spec.get("storageCapacity")),
            ",".join(t.get("audience", "") for t in tokens) if tokens is not None else "<unset>",
            bool(spec.get("requiresRepublish")),
            ",".join(spec.get("volumeLifecycleModes") or []) or "<none>",
            age_of(obj),
        ]
