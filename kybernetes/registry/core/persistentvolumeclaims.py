"""PersistentVolumeClaims: a user's request for storage."""

from __future__ import annotations

import copy
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
    forbidden,
    invalid,
    not_supported,
    parse_quantity,
    required,
)
from kybernetes.registry.core.persistentvolumes import (
    VOLUME_MODES,
    access_modes_cell,
    storage_class_of,
    validate_access_modes,
)

_SPEC = "io.k8s.api.core.v1.PersistentVolumeClaimSpec"
_STATUS = "io.k8s.api.core.v1.PersistentVolumeClaimStatus"
SPEC_IMMUTABLE = ("spec is immutable after creation except resources.requests and "
                  "volumeAttributesClassName for bound claims")


def default_claim_spec(spec: Obj) -> None:
    """SetDefaults_PersistentVolumeClaimSpec (also used for StatefulSet claim templates)."""
    spec.setdefault("volumeMode", "Filesystem")


def validate_claim_spec(spec: Obj, path: str) -> list[Cause]:
    causes = validate_access_modes(spec.get("accessModes"), f"{path}.accessModes")
    storage = dig(spec, "resources", "requests", "storage")
    if storage is None:
        causes.append(required(f"{path}.resources[storage]"))
    else:
        q = parse_quantity(storage)
        if q is None or q <= 0:
            causes.append(invalid(f"{path}.resources[storage]", str(storage), "must be greater than zero"))
    vm = spec.get("volumeMode")
    if vm and vm not in VOLUME_MODES:
        causes.append(not_supported(f"{path}.volumeMode", vm, VOLUME_MODES))
    return causes


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
    tracks_generation = False

    columns = (
        NAME_COLUMN,
        column("Status", doc=(_STATUS, "phase")),
        column("Volume", doc=(_SPEC, "volumeName")),
        column("Capacity", doc=(_STATUS, "capacity")),
        column("Access Modes", doc=(_STATUS, "accessModes")),
        column("StorageClass", doc="StorageClass of the pvc"),
        column("VolumeAttributesClass", doc="VolumeAttributesClass of the pvc"),
        AGE_COLUMN,
        column("VolumeMode", doc=(_SPEC, "volumeMode"), priority=1),
    )

    def default(self, obj: Obj) -> None:
        default_claim_spec(obj.setdefault("spec", {}))

    def prepare_for_create(self, obj: Obj) -> None:
        # upstream clears status here and defaulting on read shows Pending; store it directly
        obj["status"] = {"phase": "Pending"}

    def validate(self, obj: Obj) -> list[Cause]:
        return validate_claim_spec(obj.get("spec") or {}, "spec")

    def validate_update(self, new: Obj, old: Obj) -> list[Cause]:
        causes = self.validate(new)
        ns, os_ = copy.deepcopy(new.get("spec") or {}), copy.deepcopy(old.get("spec") or {})
        # what may change: storage requests and the attributes class; volumeName once, from empty
        for s in (ns, os_):
            res = s.get("resources") or {}
            res.pop("requests", None)
            if res:
                s["resources"] = res
            else:
                s.pop("resources", None)
            s.pop("volumeAttributesClassName", None)
        if not os_.get("volumeName"):
            ns.pop("volumeName", None)
            os_.pop("volumeName", None)
        if ns != os_:
            causes.append(forbidden("spec", SPEC_IMMUTABLE))
        return causes

    def row(self, obj: Obj) -> list[Any]:
        spec = obj.get("spec") or {}
        phase = dig(obj, "status", "phase", default="")
        if dig(obj, "metadata", "deletionTimestamp"):
            phase = "Terminating"
        capacity = access = ""
        if spec.get("volumeName"):
            access = access_modes_cell(dig(obj, "status", "accessModes"))
            capacity = str(dig(obj, "status", "capacity", "storage", default="0"))
        return [
            obj["metadata"]["name"], phase, spec.get("volumeName") or "", capacity, access,
            storage_class_of(obj), spec.get("volumeAttributesClassName") or "<unset>", age_of(obj),
            spec.get("volumeMode") or "<unset>",
        ]
