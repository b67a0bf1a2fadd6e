"""ReplicationControllers: the legacy replica manager (map selector, defaults from the template)."""

from __future__ import annotations

from typing import Any

from kybernetes.registry import _workloads
from kybernetes.registry.base import (
    Cause,
    Obj,
    Strategy,
    dig,
    format_labels,
    nonnegative,
    required,
)
from kybernetes.registry.core import podspec

_SPEC = "io.k8s.api.core.v1.ReplicationControllerSpec"
_STATUS = "io.k8s.api.core.v1.ReplicationControllerStatus"


class ReplicationControllerStrategy(Strategy):
    """core/v1 ReplicationController."""

    group = ""
    version = "v1"
    kind = "ReplicationController"
    resource = "replicationcontrollers"
    singular = "replicationcontroller"
    short_names = ("rc",)
    categories = ("all",)
    subresources = ("status", "scale")
    has_status_split = True

    columns = _workloads.replica_set_columns(_SPEC, _STATUS)
    field_selectors = _workloads.REPLICAS_FIELD_SELECTORS

    def default(self, obj: Obj) -> None:
        spec = obj.setdefault("spec", {})
        template = spec.get("template")
        labels = dig(template, "metadata", "labels") if template else None
        if labels:
            if not spec.get("selector"):
                spec["selector"] = dict(labels)
            _workloads.copy_template_labels(obj, template)
        spec.setdefault("replicas", 1)
        podspec.default_pod_template(template)

    def validate(self, obj: Obj) -> list[Cause]:
        spec = obj.get("spec") or {}
        causes = nonnegative("spec.replicas", spec.get("replicas"))
        causes += nonnegative("spec.minReadySeconds", spec.get("minReadySeconds"))
        selector = spec.get("selector") or {}
        if not selector:
            causes.append(required("spec.selector"))
        causes += _workloads.validate_template(
            spec, "spec", selector={"matchLabels": selector} if selector else None,
            restart_policies=("Always",), kind_name="ReplicationController")
        return causes

    def row(self, obj: Obj) -> list[Any]:
        return _workloads.replica_set_row(obj, format_labels(dig(obj, "spec", "selector")))
