"""DaemonSets: one pod per eligible node."""

from __future__ import annotations

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
    age_of,
    column,
    container_cells,
    dig,
    format_label_selector,
    format_labels,
    invalid,
    nonnegative,
    not_supported,
    required,
)
from kybernetes.registry.core import podspec

UPDATE_TYPES = ("OnDelete", "RollingUpdate")
_STATUS = "io.k8s.api.apps.v1.DaemonSetStatus"


class DaemonSetStrategy(Strategy):
    """apps/v1 DaemonSet."""

    group = "apps"
    version = "v1"
    kind = "DaemonSet"
    resource = "daemonsets"
    singular = "daemonset"
    short_names = ("ds",)
    categories = ("all",)
    subresources = ("status",)
    has_status_split = True
    status_reset_meta = ()  # upstream's status strategy keeps only spec

    columns = (
        NAME_COLUMN,
        column("Desired", "integer", (_STATUS, "desiredNumberScheduled")),
        column("Current", "integer", (_STATUS, "currentNumberScheduled")),
        column("Ready", "integer", (_STATUS, "numberReady")),
        column("Up-to-date", "integer", (_STATUS, "updatedNumberScheduled")),
        column("Available", "integer", (_STATUS, "numberAvailable")),
        column("Node Selector", doc=("io.k8s.api.core.v1.PodSpec", "nodeSelector")),
        AGE_COLUMN,
        CONTAINERS_COLUMN,
        IMAGES_COLUMN,
        column("Selector", doc=("io.k8s.api.apps.v1.DaemonSetSpec", "selector"), priority=1),
    )

    def default(self, obj: Obj) -> None:
        spec = obj.setdefault("spec", {})
        us = spec.setdefault("updateStrategy", {})
        us.setdefault("type", "RollingUpdate")
        if us["type"] == "RollingUpdate":
            ru = us.setdefault("rollingUpdate", {})
            ru.setdefault("maxUnavailable", 1)
            ru.setdefault("maxSurge", 0)
        spec.setdefault("revisionHistoryLimit", 10)
        podspec.default_pod_template(spec.get("template"))

    def validate(self, obj: Obj) -> list[Cause]:
        spec = obj.get("spec") or {}
        causes = _workloads.validate_selector(spec, "spec", "daemonset")
        causes += _workloads.validate_template(spec, "spec", selector=spec.get("selector"),
                                               restart_policies=("Always",), kind_name="DaemonSet")
        causes += nonnegative("spec.minReadySeconds", spec.get("minReadySeconds"))
        causes += nonnegative("spec.revisionHistoryLimit", spec.get("revisionHistoryLimit"))
        us = spec.get("updateStrategy") or {}
        t = us.get("type") or ""
        if not t:
            causes.append(required("spec.updateStrategy.type"))
        elif t not in UPDATE_TYPES:
            causes.append(not_supported("spec.updateStrategy.type", t, UPDATE_TYPES))
        elif t == "RollingUpdate":
            ru = us.get("rollingUpdate") or {}
            rp = "spec.updateStrategy.rollingUpdate"
            mu, ms = ru.get("maxUnavailable"), ru.get("maxSurge")
            causes += _workloads.validate_int_or_percent(mu, f"{rp}.maxUnavailable")
            causes += _workloads.validate_int_or_percent(ms, f"{rp}.maxSurge")
            if _workloads.is_zero(mu) and _workloads.is_zero(ms):
                causes.append(invalid(f"{rp}.maxUnavailable", mu, "may not be 0 when `maxSurge` is 0"))
            causes += _workloads.not_more_than_100_percent(mu, f"{rp}.maxUnavailable")
        return causes

    def validate_update(self, new: Obj, old: Obj) -> list[Cause]:
        return self.validate(new) + _workloads.selector_immutable(new, old)

    def row(self, obj: Obj) -> list[Any]:
        st = obj.get("status") or {}
        names, images = container_cells(dig(obj, "spec", "template", "spec", "containers"))
        return [
            obj["metadata"]["name"],
            int(st.get("desiredNumberScheduled") or 0),
            int(st.get("currentNumberScheduled") or 0),
            int(st.get("numberReady") or 0),
            int(st.get("updatedNumberScheduled") or 0),
            int(st.get("numberAvailable") or 0),
            format_labels(dig(obj, "spec", "template", "spec", "nodeSelector")),
            age_of(obj),
            names,
            images,
            format_label_selector(dig(obj, "spec", "selector")),
        ]
