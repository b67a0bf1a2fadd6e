"""Deployments: declarative rollouts of ReplicaSets."""

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
    forbidden,
    invalid,
    nonnegative,
    not_supported,
    required,
    selector_string,
)
from kybernetes.registry.core import podspec

STRATEGY_TYPES = ("Recreate", "RollingUpdate")
_STATUS = "io.k8s.api.apps.v1.DeploymentStatus"


def default_deployment_spec(spec: Obj) -> None:
    spec.setdefault("replicas", 1)
    strategy = spec.setdefault("strategy", {})
    strategy.setdefault("type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        ru = strategy.setdefault("rollingUpdate", {})
        ru.setdefault("maxUnavailable", "25%")
        ru.setdefault("maxSurge", "25%")
    spec.setdefault("revisionHistoryLimit", 10)
    spec.setdefault("progressDeadlineSeconds", 600)
    podspec.default_pod_template(spec.get("template"))


def validate_strategy(strategy: Obj, path: str) -> list[Cause]:
    causes: list[Cause] = []
    t = strategy.get("type") or ""
    ru = strategy.get("rollingUpdate")
    if not t:
        causes.append(required(f"{path}.type"))
    elif t not in STRATEGY_TYPES:
        causes.append(not_supported(f"{path}.type", t, STRATEGY_TYPES))
    if t == "Recreate" and ru is not None:
        causes.append(forbidden(f"{path}.rollingUpdate", "may not be specified when strategy `type` is 'Recreate'"))
    if t == "RollingUpdate":
        if ru is None:
            causes.append(required(f"{path}.rollingUpdate", "this should be defaulted and never be nil"))
        else:
            mu, ms = ru.get("maxUnavailable"), ru.get("maxSurge")
            rp = f"{path}.rollingUpdate"
            causes += _workloads.validate_int_or_percent(mu, f"{rp}.maxUnavailable")
            causes += _workloads.validate_int_or_percent(ms, f"{rp}.maxSurge")
            if _workloads.is_zero(mu) and _workloads.is_zero(ms):
                causes.append(invalid(f"{rp}.maxUnavailable", mu, "may not be 0 when `maxSurge` is 0"))
            causes += _workloads.not_more_than_100_percent(mu, f"{rp}.maxUnavailable")
    return causes


class DeploymentStrategy(Strategy):
    """apps/v1 Deployment."""

    group = "apps"
    version = "v1"
    kind = "Deployment"
    resource = "deployments"
    singular = "deployment"
    short_names = ("deploy",)
    categories = ("all",)
    subresources = ("status", "scale")
    has_status_split = True
    status_reset_meta = ("labels",)  # upstream's status strategy keeps only spec and labels

    columns = (
        NAME_COLUMN,
        column("Ready", doc="Number of the pod with ready state"),
        column("Up-to-date", doc=(_STATUS, "updatedReplicas")),
        column("Available", doc=(_STATUS, "availableReplicas")),
        AGE_COLUMN,
        CONTAINERS_COLUMN,
        IMAGES_COLUMN,
        column("Selector", doc=("io.k8s.api.apps.v1.DeploymentSpec", "selector"), priority=1),
    )

    def generation_changes(self, new: Obj, old: Obj) -> bool:
        """Deployments also move generation when annotations change (upstream: a
        rollback request and change-cause live there)."""
        return new.get("spec") != old.get("spec") or (
            (new.get("metadata") or {}).get("annotations") != (old.get("metadata") or {}).get("annotations"))

    def default(self, obj: Obj) -> None:
        default_deployment_spec(obj.setdefault("spec", {}))

    def validate(self, obj: Obj) -> list[Cause]:
        spec = obj.get("spec") or {}
        causes = nonnegative("spec.replicas", spec.get("replicas"))
        causes += _workloads.validate_selector(spec, "spec", "deployment")
        causes += _workloads.validate_template(spec, "spec", selector=spec.get("selector"),
                                               restart_policies=("Always",))
        causes += validate_strategy(spec.get("strategy") or {}, "spec.strategy")
        causes += nonnegative("spec.minReadySeconds", spec.get("minReadySeconds"))
        causes += nonnegative("spec.revisionHistoryLimit", spec.get("revisionHistoryLimit"))
        pds = spec.get("progressDeadlineSeconds")
        if pds is not None:
            causes += nonnegative("spec.progressDeadlineSeconds", pds)
            if pds <= (spec.get("minReadySeconds") or 0):
                causes.append(invalid("spec.progressDeadlineSeconds", pds, "must be greater than minReadySeconds"))
        return causes

    def validate_update(self, new: Obj, old: Obj) -> list[Cause]:
        return self.validate(new) + _workloads.selector_immutable(new, old)

    def row(self, obj: Obj) -> list[Any]:
        names, images = container_cells(dig(obj, "spec", "template", "spec", "containers"))
        status = obj.get("status") or {}
        return [
            obj["metadata"]["name"],
            f"{status.get('readyReplicas') or 0}/{dig(obj, 'spec', 'replicas', default=0) or 0}",
            int(status.get("updatedReplicas") or 0),
            int(status.get("availableReplicas") or 0),
            age_of(obj),
            names,
            images,
            selector_string(dig(obj, "spec", "selector")),
        ]
