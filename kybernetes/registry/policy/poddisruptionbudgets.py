"""PodDisruptionBudgets: limits on voluntary disruptions."""

from __future__ import annotations

from typing import Any

from kybernetes.registry import _workloads
from kybernetes.registry.base import (
    AGE_COLUMN,
    NAME_COLUMN,
    Cause,
    Obj,
    Strategy,
    age_of,
    column,
    dig,
    not_supported,
)

EVICTION_POLICIES = ("AlwaysAllow", "IfHealthyBudget")


def _int_or_string_cell(value: Any) -> str:
    return "N/A" if value is None else str(value)


class PodDisruptionBudgetStrategy(Strategy):
    """policy/v1 PodDisruptionBudget."""

    group = "policy"
    version = "v1"
    kind = "PodDisruptionBudget"
    resource = "poddisruptionbudgets"
    singular = "poddisruptionbudget"
    short_names = ("pdb",)
    subresources = ("status",)
    has_status_split = True

    columns = (
        NAME_COLUMN,
        column("Min Available", doc="The minimum number of pods that must be available."),
        column("Max Unavailable", doc="The maximum number of pods that may be unavailable."),
        column("Allowed Disruptions", "integer", "Calculated number of pods that may be disrupted at this time."),
        AGE_COLUMN,
    )

    def validate(self, obj: Obj) -> list[Cause]:
        spec = obj.get("spec") or {}
        causes: list[Cause] = []
        mn, mx = spec.get("minAvailable"), spec.get("maxUnavailable")
        if mn is not None and mx is not None:
            causes.append(Cause("FieldValueInvalid", "spec", "Invalid value: policy.PodDisruptionBudgetSpec{...}: "
                                                           "minAvailable and maxUnavailable cannot be both set"))
        for key, value in (("minAvailable", mn), ("maxUnavailable", mx)):
            if value is not None:
                causes += _workloads.validate_int_or_percent(value, f"spec.{key}")
                causes += _workloads.not_more_than_100_percent(value, f"spec.{key}")
        if spec.get("selector") is not None:
            causes += _workloads.validate_label_selector(spec["selector"], "spec.selector")
        upe = spec.get("unhealthyPodEvictionPolicy")
        if upe is not None and upe not in EVICTION_POLICIES:
            causes.append(not_supported("spec.unhealthyPodEvictionPolicy", upe, EVICTION_POLICIES))
        return causes

    def row(self, obj: Obj) -> list[Any]:
        spec = obj.get("spec") or {}
        return [obj["metadata"]["name"], _int_or_string_cell(spec.get("minAvailable")),
                _int_or_string_cell(spec.get("maxUnavailable")),
                int(dig(obj, "status", "disruptionsAllowed", default=0) or 0), age_of(obj)]
