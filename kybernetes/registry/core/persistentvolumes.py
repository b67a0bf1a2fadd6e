"""PersistentVolumes: cluster storage provisioned by an admin or a provisioner."""

from __future__ import annotations

import copy
from typing import Any, Optional

from kybernetes.api.meta import now_rfc3339
from kybernetes.api.storagehelpers import ACCESS_MODES, volume_class
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
    required,
    spec_diff_summary,
)

_SHORT = {"ReadWriteOnce": "RWO", "ReadOnlyMany": "ROX", "ReadWriteMany": "RWX", "ReadWriteOncePod": "RWOP"}
RECLAIM_POLICIES = ("Delete", "Recycle", "Retain")
VOLUME_MODES = ("Block", "Filesystem")
# spec keys that are not the volume source
_NOT_SOURCE = {"accessModes", "capacity", "claimRef", "persistentVolumeReclaimPolicy", "storageClassName",
               "mountOptions", "volumeMode", "nodeAffinity", "volumeAttributesClassName"}
_SPEC = "io.k8s.api.core.v1.PersistentVolumeSpec"


def access_modes_cell(modes: Optional[list[str]]) -> str:
    """upstream GetAccessModesAsString: short names in a fixed order, no repeats."""
    modes = modes or []
    return ",".join(_SHORT[m] for m in ACCESS_MODES if m in modes)


def volume_source(spec: Obj) -> dict[str, Any]:
    return {k: v for k, v in spec.items() if k not in _NOT_SOURCE}


def validate_access_modes(modes: Optional[list[str]], path: str) -> list[Cause]:
    causes: list[Cause] = []
    if not modes:
        causes.append(required(path))
    for m in modes or []:
        if m not in ACCESS_MODES:
            causes.append(not_supported(path, m, sorted(ACCESS_MODES)))
    return causes


def _validate_local(spec: Obj) -> list[Cause]:
    """upstream validateLocalVolumeSource and the node affinity a local volume needs."""
    causes: list[Cause] = []
    path = (spec.get("local") or {}).get("path") or ""
    if not path:
        causes.append(required("spec.local.path"))
    elif ".." in path.split("/"):
        causes.append(invalid("spec.local.path", path, "must not contain '..'"))
    affinity = spec.get("nodeAffinity")
    if affinity is not None and affinity.get("required") is None:
        causes.append(required("spec.nodeAffinity.required", "must specify required node constraints"))
    if affinity is None or affinity.get("required") is None:
        causes.append(required("spec.nodeAffinity", "Local volume requires node affinity"))
    return causes


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
    tracks_generation = False

    columns = (
        NAME_COLUMN,
        column("Capacity", doc=(_SPEC, "capacity")),
        column("Access Modes", doc=(_SPEC, "accessModes")),
        column("Reclaim Policy", doc=(_SPEC, "persistentVolumeReclaimPolicy")),
        column("Status", doc=("io.k8s.api.core.v1.PersistentVolumeStatus", "phase")),
        column("Claim", doc=(_SPEC, "claimRef")),
        column("StorageClass", doc="StorageClass of the pv"),
        column("VolumeAttributesClass", doc="VolumeAttributesClass of the pv"),
        column("Reason", doc=("io.k8s.api.core.v1.PersistentVolumeStatus", "reason")),
        AGE_COLUMN,
        column("VolumeMode", doc=(_SPEC, "volumeMode"), priority=1),
    )

    def default(self, obj: Obj) -> None:
        spec = obj.setdefault("spec", {})
        spec.setdefault("persistentVolumeReclaimPolicy", "Retain")
        spec.setdefault("volumeMode", "Filesystem")
        if isinstance(spec.get("hostPath"), dict):
            spec["hostPath"].setdefault("type", "")

    def prepare_for_create(self, obj: Obj) -> None:
        obj["status"] = {"phase": "Pending", "lastPhaseTransitionTime": now_rfc3339()}

    def validate(self, obj: Obj) -> list[Cause]:
        spec = obj.get("spec") or {}
        causes = validate_access_modes(spec.get("accessModes"), "spec.accessModes")
        capacity = spec.get("capacity") or {}
        if not capacity:
            causes.append(required("spec.capacity"))
        elif "storage" not in capacity or len(capacity) > 1:
            causes.append(not_supported("spec.capacity", capacity, ["storage"]))
        rp = spec.get("persistentVolumeReclaimPolicy")
        if rp and rp not in RECLAIM_POLICIES:
            causes.append(not_supported("spec.persistentVolumeReclaimPolicy", rp, RECLAIM_POLICIES))
        vm = spec.get("volumeMode")
        if vm and vm not in VOLUME_MODES:
            causes.append(not_supported("spec.volumeMode", vm, VOLUME_MODES))
        source = volume_source(spec)
        if not source:
            causes.append(required("spec", "must specify a volume type"))
        if "local" in source:
            causes.extend(_validate_local(spec))
        return causes

    def prepare_for_status_update(self, new: Obj, old: Obj) -> None:
        """upstream's status strategy: a phase change stamps status.lastPhaseTransitionTime
        unless the writer set a new one; an unchanged phase keeps the old stamp."""
        super().prepare_for_status_update(new, old)
        ns, os_ = new.setdefault("status", {}), old.get("status") or {}
        stamp = ns.get("lastPhaseTransitionTime")
        if ns.get("phase") == os_.get("phase"):
            if stamp is None and os_.get("lastPhaseTransitionTime") is not None:
                ns["lastPhaseTransitionTime"] = os_["lastPhaseTransitionTime"]
        elif stamp is None or stamp == os_.get("lastPhaseTransitionTime"):
            ns["lastPhaseTransitionTime"] = now_rfc3339()

    def validate_update(self, new: Obj, old: Obj) -> list[Cause]:
        """upstream ValidatePersistentVolumeUpdate: the source is frozen (a CSI volume may gain a
        controllerExpandSecretRef), so are volumeMode and a node affinity once set."""
        causes = self.validate(new)
        ns, os_ = new.get("spec") or {}, old.get("spec") or {}
        new_source, old_source = volume_source(ns), volume_source(os_)
        if ("csi" in old_source and "csi" in new_source and "controllerExpandSecretRef" not in old_source["csi"]
                and "controllerExpandSecretRef" in new_source["csi"]):
            new_source = copy.deepcopy(new_source)
            del new_source["csi"]["controllerExpandSecretRef"]
        if new_source != old_source:
            changed = sorted(k for k in set(new_source) | set(old_source) if new_source.get(k) != old_source.get(k))
            causes.append(forbidden("spec.persistentvolumesource",
                                    "spec.persistentvolumesource is immutable after creation\n"
                                    + spec_diff_summary("PersistentVolumeSource", changed)))
        if ns.get("volumeMode") != os_.get("volumeMode"):
            causes.append(immutable("volumeMode", ns.get("volumeMode")))  # upstream's path has no "spec."
        if os_.get("nodeAffinity") is not None and ns.get("nodeAffinity") != os_.get("nodeAffinity"):
            # upstream prints the Go struct (pointer addresses included); the type name stands in
            causes.append(Cause("FieldValueInvalid", "nodeAffinity", "Invalid value: &core.VolumeNodeAffinity{...}: "
                                "field is immutable, except for updating from beta label to GA"))
        if os_.get("volumeAttributesClassName") is not None and ns.get("volumeAttributesClassName") is None:
            causes.append(forbidden("spec.volumeAttributesClassName", "update from non-nil value to nil is forbidden"))
        return causes

    def row(self, obj: Obj) -> list[Any]:
        spec = obj.get("spec") or {}
        claim = spec.get("claimRef")
        phase = dig(obj, "status", "phase", default="")
        if dig(obj, "metadata", "deletionTimestamp"):
            phase = "Terminating"
        return [
            obj["metadata"]["name"],
            str((spec.get("capacity") or {}).get("storage", "0")),
            access_modes_cell(spec.get("accessModes")),
            spec.get("persistentVolumeReclaimPolicy") or "",
            phase,
            f"{claim.get('namespace', '')}/{claim.get('name', '')}" if claim else "",
            volume_class(obj),
            spec.get("volumeAttributesClassName") or "<unset>",
            dig(obj, "status", "reason", default=""),
            age_of(obj),
            spec.get("volumeMode") or "<unset>",
        ]
