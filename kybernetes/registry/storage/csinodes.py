"""CSINodes: the CSI drivers installed on a node."""

from __future__ import annotations

from typing import Any

from kybernetes.registry.base import (
    AGE_COLUMN,
    NAME_COLUMN,
    Cause,
    Obj,
    Strategy,
    age_of,
    column,
    dig,
    duplicate,
    required,
)


class CSINodeStrategy(Strategy):
    """storage.k8s.io/v1 CSINode."""

    group = "storage.k8s.io"
    version = "v1"
    kind = "CSINode"
    resource = "csinodes"
    singular = "csinode"
    namespaced = False
    tracks_generation = False
    return_deleted_object = True

    columns = (
        NAME_COLUMN,
        column("Drivers", "integer", "Drivers indicates the number of CSI drivers registered on the node"),
        AGE_COLUMN,
    )

    def validate(self, obj: Obj) -> list[Cause]:
        causes: list[Cause] = []
        seen: set[str] = set()
        for i, d in enumerate(dig(obj, "spec", "drivers", default=[]) or []):
            name = d.get("name") or ""
            if not name:
                causes.append(required(f"spec.drivers[{i}].name"))
            elif name in seen:
                causes.append(duplicate(f"spec.drivers[{i}].name", name))
            seen.add(name)
            if not d.get("nodeID"):
                causes.append(required(f"spec.drivers[{i}].nodeID"))
        return causes

    def validate_update(self, new: Obj, old: Obj) -> list[Cause]:
        """upstream ValidateCSINodeUpdate: a registered driver entry never changes, except its
        allocatable count (MutableCSINodeAllocatableCount)."""
        causes = self.validate(new)
        old_drivers = {d.get("name"): d for d in dig(old, "spec", "drivers", default=[]) or []}
        for d in dig(new, "spec", "drivers", default=[]) or []:
            before = old_drivers.get(d.get("name"))
            if before is None:
                continue
            strip = lambda x: {k: v for k, v in x.items() if k != "allocatable"}  # noqa: E731
            if strip(d) != strip(before):
                # upstream prints the whole Go struct as the value
                causes.append(Cause("FieldValueInvalid", "CSINodeDriver",
                                    "Invalid value: storage.CSINodeDriver{...}: field is immutable"))
        return causes

    def row(self, obj: Obj) -> list[Any]:
        return [obj["metadata"]["name"], len(dig(obj, "spec", "drivers", default=[]) or []), age_of(obj)]
