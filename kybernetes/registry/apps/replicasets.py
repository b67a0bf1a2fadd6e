"""ReplicaSets: keep N identical pods running."""

from __future__ import annotations

from typing import Any

from kybernetes.registry import _workloads
from kybernetes.registry.base import (
    Cause,
    Obj,
    Strategy,
    dig,
    format_label_selector,
    nonnegative,
)
from kybernetes.registry.core import podspec

_SPEC = "io.k8s.api.apps.v1.ReplicaSetSpec"
_STATUS = "io.k8s.api.apps.v1.ReplicaSetStatus"


class ReplicaSetStrategy(Strategy):
    """apps/v1 ReplicaSet."""

    group = "apps"
    version = "v1"
    kind = "ReplicaSet"
    resource = "replicasets"
    singular = "replicaset"
    short_names = ("rs",)
    categories = ("all",)
    subresources = ("status", "scale")
    has_status_split = True
    status_reset_meta = ()  # upstream's status strategy keeps only spec

    columns = _workloads.replica_set_columns(_SPEC, _STATUS)
    field_selectors = _workloads.REPLICAS_FIELD_SELECTORS

    def default(self, obj: Obj) -> None:
        spec = obj.setdefault("spec", {})
        spec.setdefault("replicas", 1)
        podspec.default_pod_template(spec.get("template"))

    def validate(self, obj: Obj) -> list[Cause]:
        spec = obj.get("spec") or {}
        causes = nonnegative("spec.replicas", spec.get("replicas"))
        causes += nonnegative("spec.minReadySeconds", spec.get("minReadySeconds"))
        # upstream's ReplicaSet message says "deployment" too
        causes += _workloads.validate_selector(spec, "spec", "deployment")
        causes += _workloads.validate_template(spec, "spec", selector=spec.get("selector"),
                                               restart_policies=("Always",))
        return causes

    def validate_update(self, new: Obj, old: Obj) -> list[Cause]:
        return self.validate(new) + _workloads.selector_immutable(new, old)

    def row(self, obj: Obj) -> list[Any]:
        return _workloads.replica_set_row(obj, format_label_selector(dig(obj, "spec", "selector")))
