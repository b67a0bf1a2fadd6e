"""HorizontalPodAutoscalers (autoscaling/v2): scale a workload on metrics."""

from __future__ import annotations

from typing import Any, Optional

from kybernetes.registry.base import (
    AGE_COLUMN,
    NAME_COLUMN,
    Cause,
    Obj,
    Strategy,
    age_of,
    column,
    dig,
    invalid,
    required,
)

_SPEC = "io.k8s.api.autoscaling.v2.HorizontalPodAutoscalerSpec"
_MAX_SHOWN = 2
DEFAULT_CPU_UTILIZATION = 80


def _scale_up_defaults() -> Obj:
    return {"stabilizationWindowSeconds": 0, "selectPolicy": "Max",
            "policies": [{"type": "Pods", "value": 4, "periodSeconds": 15},
                         {"type": "Percent", "value": 100, "periodSeconds": 15}]}


def _scale_down_defaults() -> Obj:
    return {"stabilizationWindowSeconds": 300, "selectPolicy": "Max",
            "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}]}


def _fill(rules: Optional[Obj], defaults: Obj) -> Obj:
    if rules is None:
        return defaults
    for k, v in defaults.items():
        if rules.get(k) is None:
            rules[k] = v
    return rules


def _metric_cell(spec: Obj, status: Optional[Obj]) -> str:
    t = spec.get("type")
    src_key = {"External": "external", "Pods": "pods", "Object": "object", "Resource": "resource",
               "ContainerResource": "containerResource"}.get(t or "")
    if src_key is None:
        return "<unknown type>"
    src = spec.get(src_key) or {}
    target = src.get("target") or {}
    current = dig(status, src_key, "current") if status and status.get(src_key) else None
    if t in ("External", "Object"):
        if target.get("averageValue") is not None:
            cur = (current or {}).get("averageValue")
            return f"{cur if cur is not None else '<unknown>'}/{target['averageValue']} (avg)"
        cur = (current or {}).get("value", "<unknown>") if current is not None else "<unknown>"
        return f"{cur}/{target.get('value', '0')}"
    if t == "Pods":
        cur = (current or {}).get("averageValue", "<unknown>") if current is not None else "<unknown>"
        return f"{cur}/{target.get('averageValue', '0')}"
    name = src.get("name", "")
    if target.get("averageValue") is not None:
        cur = (current or {}).get("averageValue", "<unknown>") if current is not None else "<unknown>"
        return f"{name}: {cur}/{target['averageValue']}"
    util = (current or {}).get("averageUtilization")
    cur = f"{util}%" if util is not None else "<unknown>"
    tgt = f"{target['averageUtilization']}%" if target.get("averageUtilization") is not None else "<auto>"
    return f"{name}: {cur}/{tgt}"


def targets_cell(hpa: Obj) -> str:
    """upstream formatHPAMetrics: at most two metrics, then "+ N more..."."""
    specs = dig(hpa, "spec", "metrics", default=[]) or []
    if not specs:
        return "<none>"
    statuses = dig(hpa, "status", "currentMetrics", default=[]) or []
    cells = [_metric_cell(s, statuses[i] if i < len(statuses) else None) for i, s in enumerate(specs)]
    if len(cells) > _MAX_SHOWN:
        return ", ".join(cells[:_MAX_SHOWN]) + f" + {len(cells) - _MAX_SHOWN} more..."
    return ", ".join(cells)


class HorizontalPodAutoscalerStrategy(Strategy):
    """autoscaling/v2 HorizontalPodAutoscaler."""

    group = "autoscaling"
    version = "v2"
    kind = "HorizontalPodAutoscaler"
    resource = "horizontalpodautoscalers"
    singular = "horizontalpodautoscaler"
    short_names = ("hpa",)
    categories = ("all",)
    subresources = ("status",)
    has_status_split = True

    columns = (
        NAME_COLUMN,
        column("Reference", doc=(_SPEC, "scaleTargetRef")),
        column("Targets", doc=(_SPEC, "metrics")),
        column("MinPods", doc=(_SPEC, "minReplicas")),
        column("MaxPods", doc=(_SPEC, "maxReplicas")),
        column("Replicas", doc=("io.k8s.api.autoscaling.v2.HorizontalPodAutoscalerStatus", "currentReplicas")),
        AGE_COLUMN,
    )

    def default(self, obj: Obj) -> None:
        spec = obj.setdefault("spec", {})
        spec.setdefault("minReplicas", 1)
        if not spec.get("metrics"):
            spec["metrics"] = [{"type": "Resource", "resource": {
                "name": "cpu", "target": {"type": "Utilization", "averageUtilization": DEFAULT_CPU_UTILIZATION}}}]
        behavior = spec.get("behavior")
        if behavior is not None:  # only a given behavior gets its gaps filled
            behavior["scaleUp"] = _fill(behavior.get("scaleUp"), _scale_up_defaults())
            behavior["scaleDown"] = _fill(behavior.get("scaleDown"), _scale_down_defaults())

    def validate(self, obj: Obj) -> list[Cause]:
        spec = obj.get("spec") or {}
        causes: list[Cause] = []
        ref = spec.get("scaleTargetRef") or {}
        if not ref.get("kind"):
            causes.append(required("spec.scaleTargetRef.kind"))
        if not ref.get("name"):
            causes.append(required("spec.scaleTargetRef.name"))
        mn = spec.get("minReplicas")
        mx = spec.get("maxReplicas") or 0
        if mn is not None and mn < 1:
            causes.append(invalid("spec.minReplicas", mn, "must be greater than or equal to 1"))
        if mx < 1:
            causes.append(invalid("spec.maxReplicas", mx, "must be greater than 0"))
        if mn is not None and mx < mn:
            causes.append(invalid("spec.maxReplicas", mx, "must be greater than or equal to `minReplicas`"))
        return causes

    def row(self, obj: Obj) -> list[Any]:
        spec = obj.get("spec") or {}
        ref = spec.get("scaleTargetRef") or {}
        mn = spec.get("minReplicas")
        return [
            obj["metadata"]["name"],
            f"{ref.get('kind', '')}/{ref.get('name', '')}",
            targets_cell(obj),
            str(mn) if mn is not None else "<unset>",
            int(spec.get("maxReplicas") or 0),
            int(dig(obj, "status", "currentReplicas", default=0) or 0),
            age_of(obj),
        ]
