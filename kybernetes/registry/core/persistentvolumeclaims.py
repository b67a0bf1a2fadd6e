"""PersistentVolumeClaims: a user's request for storage."""

from __future__ import annotations

import copy
from typing import Any

from kybernetes.api.storagehelpers import BETA_CLASS_ANNOTATION, claim_class
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
    immutable,
    invalid,
    not_supported,
    parse_quantity,
    required,
    spec_diff_summary,
)
from kybernetes.registry.core.persistentvolumes import (
    VOLUME_MODES,
    access_modes_cell,
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
        """upstream ValidatePersistentVolumeClaimUpdate: the spec is frozen except the storage
        request of a bound claim, the attributes class, volumeName once and storageClassName from unset."""
        causes = self.validate(new)
        nspec, ospec = new.get("spec") or {}, old.get("spec") or {}
        ns, os_ = copy.deepcopy(nspec), copy.deepcopy(ospec)
        if not os_.get("volumeName"):
            os_.pop("volumeName", None)
            if "volumeName" in ns:
                os_["volumeName"] = ns["volumeName"]
        old_class_ann = dig(old, "metadata", "annotations", BETA_CLASS_ANNOTATION)
        new_class_ann = dig(new, "metadata", "annotations", BETA_CLASS_ANNOTATION)
        if (old_class_ann is not None and ospec.get("storageClassName") is None
                and nspec.get("storageClassName") == old_class_ann
                and new_class_ann in (None, old_class_ann)):
            ns.pop("storageClassName", None)  # the beta annotation moved into the field
        else:
            if (new_class_ann or "") != (old_class_ann or ""):
                causes.append(immutable(f"metadata.annotations.{BETA_CLASS_ANNOTATION}", new_class_ann or ""))
            if (nspec.get("storageClassName") is not None and ospec.get("storageClassName") is None
                    and (old_class_ann is None or nspec["storageClassName"] == old_class_ann)):
                ns.pop("storageClassName", None)
        if dig(new, "status", "phase") == "Bound" and (ns.get("resources") or {}).get("requests") is not None:
            old_storage = dig(ospec, "resources", "requests", "storage")
            if old_storage is None:
                ns["resources"]["requests"].pop("storage", None)
            else:
                ns["resources"]["requests"]["storage"] = old_storage
        for s in (ns, os_):
            s.pop("volumeAttributesClassName", None)
        if ns != os_:
            changed = sorted(k for k in set(ns) | set(os_) if ns.get(k) != os_.get(k))
            causes.append(forbidden("spec", SPEC_IMMUTABLE + "\n" + spec_diff_summary("PersistentVolumeClaimSpec", changed)))
        old_size = parse_quantity(dig(ospec, "resources", "requests", "storage")) or 0
        new_size = parse_quantity(dig(nspec, "resources", "requests", "storage")) or 0
        status_size = parse_quantity(dig(old, "status", "capacity", "storage")) or 0
        if new_size < old_size and new_size <= status_size:
            # RecoverVolumeExpansionFailure: a claim may shrink back, but never to or below what it has
            causes.append(forbidden("spec.resources.requests.storage", "field can not be less than status.capacity"))
        if nspec.get("volumeMode") != ospec.get("volumeMode"):
            causes.append(immutable("volumeMode", nspec.get("volumeMode")))  # upstream's path has no "spec."
        ovac, nvac = ospec.get("volumeAttributesClassName"), nspec.get("volumeAttributesClassName")
        if ovac is not None and nvac != ovac:
            if nvac is None:
                causes.append(forbidden("spec.volumeAttributesClassName", "update from non-nil value to nil is forbidden"))
            elif nvac == "":
                causes.append(forbidden("spec.volumeAttributesClassName",
                                        "update from non-nil value to an empty string is forbidden"))
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
            claim_class(obj), spec.get("volumeAttributesClassName") or "<unset>", age_of(obj),
            spec.get("volumeMode") or "<unset>",
        ]
