"""ReplicationControllers: the legacy replica manager (map selector, defaults from the template)."""

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

    columns = (
        NAME_COLUMN,
        column("Desired", "integer", (_SPEC, "replicas")),
        column("Current", "integer", (_STATUS, "replicas")),
        column("Ready", "integer", (_STATUS, "readyReplicas")),
        AGE_COLUMN,
        CONTAINERS_COLUMN,
        IMAGES_COLUMN,
        column("Selector", doc=(_SPEC, "selector"), priority=1),
    )
    field_selectors = {"status.replicas": lambda o: str(dig(o, "status", "replicas", default=0) or 0)}

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
        desired, current, ready = _workloads.replicas_cells(obj)
        names, images = container_cells(dig(obj, "spec", "template", "spec", "containers"))
        return [obj["metadata"]["name"], desired, current, ready, age_of(obj), names, images,
                format_labels(dig(obj, "spec", "selector"))]
