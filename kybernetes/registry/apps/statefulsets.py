"""StatefulSets: pods with stable identities and storage."""

from __future__ import annotations

import copy
from typing import Any

from kybernetes.registry import _workloads
from kybernetes.registry.base import (
    AGE_COLUMN,
    CONTAINERS_COLUMN,
    IMAGES_COLUMN,
    NAME_COLUMN,
    Cause,
    Obj,
    Strategy,
    go_quote,
    age_of,
    column,
    container_cells,
    dig,
    forbidden,
    invalid,
    nonnegative,
    not_supported,
)
from kybernetes.registry.core import podspec
from kybernetes.registry.core.persistentvolumeclaims import default_claim_spec

POD_MANAGEMENT = ("OrderedReady", "Parallel")
UPDATE_TYPES = ("RollingUpdate", "OnDelete")
RETENTION = ("Retain", "Delete")
# what an update may change (everything else in spec is fixed at create)
MUTABLE = ("replicas", "ordinals", "template", "updateStrategy", "revisionHistoryLimit",
           "persistentVolumeClaimRetentionPolicy", "minReadySeconds")
UPDATE_FORBIDDEN = ("updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', "
                    "'updateStrategy', 'revisionHistoryLimit', 'persistentVolumeClaimRetentionPolicy' and "
                    "'minReadySeconds' are forbidden")


def _go_update_strategy(us: Obj) -> str:
    """The bad value as upstream's %#v prints the (internal) update strategy struct."""
    ru = "(*apps.RollingUpdateStatefulSetStrategy)(nil)" if us.get("rollingUpdate") is None else "&{...}"
    return f"apps.StatefulSetUpdateStrategy{{Type:{go_quote(us.get('type') or '')}, RollingUpdate:{ru}}}"


class StatefulSetStrategy(Strategy):
    """apps/v1 StatefulSet."""

    group = "apps"
    version = "v1"
    kind = "StatefulSet"
    resource = "statefulsets"
    singular = "statefulset"
    short_names = ("sts",)
    categories = ("all",)
    subresources = ("status", "scale")
    has_status_split = True
    status_reset_meta = ()  # upstream's status strategy keeps only spec

    columns = (
        NAME_COLUMN,
        column("Ready", doc="Number of the pod with ready state"),
        AGE_COLUMN,
        CONTAINERS_COLUMN,
        IMAGES_COLUMN,
    )

    def default(self, obj: Obj) -> None:
        spec = obj.setdefault("spec", {})
        spec.setdefault("podManagementPolicy", "OrderedReady")
        us = spec.setdefault("updateStrategy", {})
        if not us.get("type"):
            # only an implied RollingUpdate gets a rollingUpdate block; an explicit one keeps its own
            us["type"] = "RollingUpdate"
            us.setdefault("rollingUpdate", {})
        if us["type"] == "RollingUpdate" and isinstance(us.get("rollingUpdate"), dict):
            us["rollingUpdate"].setdefault("partition", 0)
            us["rollingUpdate"].setdefault("maxUnavailable", 1)  # MaxUnavailableStatefulSet is on by default
        spec.setdefault("replicas", 1)
        spec.setdefault("revisionHistoryLimit", 10)
        policy = spec.setdefault("persistentVolumeClaimRetentionPolicy", {})
        policy.setdefault("whenDeleted", "Retain")
        policy.setdefault("whenScaled", "Retain")
        for claim in spec.get("volumeClaimTemplates") or []:
            # templates are full PVC objects in the JSON form upstream returns
            claim.setdefault("apiVersion", "v1")
            claim.setdefault("kind", "PersistentVolumeClaim")
            default_claim_spec(claim.setdefault("spec", {}))
            claim.setdefault("status", {}).setdefault("phase", "Pending")
        podspec.default_pod_template(spec.get("template"))

    def validate(self, obj: Obj) -> list[Cause]:
        spec = obj.get("spec") or {}
        causes: list[Cause] = []
        pmp = spec.get("podManagementPolicy")
        if pmp not in POD_MANAGEMENT:
            causes.append(invalid("spec.podManagementPolicy", pmp or "", "must be 'OrderedReady' or 'Parallel'"))
        us = spec.get("updateStrategy") or {}
        t = us.get("type")
        if t not in UPDATE_TYPES:
            causes.append(Cause("FieldValueInvalid", "spec.updateStrategy",
                                f"Invalid value: {_go_update_strategy(us)}: must be 'RollingUpdate' or 'OnDelete'"))
        elif t == "OnDelete" and us.get("rollingUpdate") is not None:
            causes.append(invalid("spec.updateStrategy.rollingUpdate", us["rollingUpdate"],
                                  "only allowed for updateStrategy 'RollingUpdate'"))
        elif t == "RollingUpdate":
            ru = us.get("rollingUpdate") or {}
            causes += nonnegative("spec.updateStrategy.rollingUpdate.partition", ru.get("partition"))
            if ru.get("maxUnavailable") is not None:
                causes += _workloads.validate_int_or_percent(ru["maxUnavailable"],
                                                             "spec.updateStrategy.rollingUpdate.maxUnavailable")
        policy = spec.get("persistentVolumeClaimRetentionPolicy") or {}
        for k in ("whenDeleted", "whenScaled"):
            v = policy.get(k)
            if v is not None and v not in RETENTION:
                causes.append(not_supported(f"spec.persistentVolumeClaimRetentionPolicy.{k}", v, RETENTION))
        causes += nonnegative("spec.replicas", spec.get("replicas"))
        causes += nonnegative("spec.minReadySeconds", spec.get("minReadySeconds"))
        causes += nonnegative("spec.ordinals.start", dig(spec, "ordinals", "start"))
        causes += _workloads.validate_selector(spec, "spec", "statefulset")
        causes += _workloads.validate_template(spec, "spec", selector=spec.get("selector"),
                                               restart_policies=("Always",), kind_name="StatefulSet")
        return causes

    def validate_update(self, new: Obj, old: Obj) -> list[Cause]:
        causes = self.validate(new)
        ns, os_ = copy.deepcopy(new.get("spec") or {}), copy.deepcopy(old.get("spec") or {})
        for k in MUTABLE:
            ns.pop(k, None)
            os_.pop(k, None)
        if ns != os_:
            causes.append(forbidden("spec", UPDATE_FORBIDDEN))
        return causes

    def row(self, obj: Obj) -> list[Any]:
        names, images = container_cells(dig(obj, "spec", "template", "spec", "containers"))
        ready = dig(obj, "status", "readyReplicas", default=0) or 0
        desired = dig(obj, "spec", "replicas", default=0) or 0
        return [obj["metadata"]["name"], f"{ready}/{desired}", age_of(obj), names, images]
