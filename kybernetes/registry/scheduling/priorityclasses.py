"""PriorityClasses: names for pod priority values."""

from __future__ import annotations

from typing import Any

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
    not_supported,
)

HIGHEST_USER_DEFINABLE = 1_000_000_000
SYSTEM_CLASSES = {"system-cluster-critical": 2_000_000_000, "system-node-critical": 2_000_001_000}
PREEMPTION_POLICIES = ("Never", "PreemptLowerPriority")
_PC = "io.k8s.api.scheduling.v1.PriorityClass"


class PriorityClassStrategy(Strategy):
    """scheduling.k8s.io/v1 PriorityClass."""

    group = "scheduling.k8s.io"
    version = "v1"
    kind = "PriorityClass"
    resource = "priorityclasses"
    singular = "priorityclass"
    namespaced = False
    short_names = ("pc",)
    tracks_generation = False

    # upstream prints PreemptionPolicy only wide, yet declares it at priority 0
    columns = (
        NAME_COLUMN,
        column("Value", "integer", (_PC, "value")),
        column("Global-Default", "boolean", (_PC, "globalDefault")),
        AGE_COLUMN,
        column("PreemptionPolicy", doc=(_PC, "preemptionPolicy")),
    )

    def default(self, obj: Obj) -> None:
        obj.setdefault("preemptionPolicy", "PreemptLowerPriority")

    def validate(self, obj: Obj) -> list[Cause]:
        causes: list[Cause] = []
        name = dig(obj, "metadata", "name", default="")
        value = obj.get("value") or 0
        if name.startswith("system-"):
            if SYSTEM_CLASSES.get(name) != value:
                causes.append(forbidden("metadata.name", "priority class names with 'system-' prefix are reserved"))
        elif value > HIGHEST_USER_DEFINABLE:
            causes.append(forbidden("value", f"maximum allowed value of a user defined priority is "
                                             f"{HIGHEST_USER_DEFINABLE}"))
        pp = obj.get("preemptionPolicy")
        if pp is not None and pp not in PREEMPTION_POLICIES:
            causes.append(not_supported("preemptionPolicy", pp, PREEMPTION_POLICIES))
        return causes

    def validate_update(self, new: Obj, old: Obj) -> list[Cause]:
        causes = self.validate(new)
        if new.get("value") != old.get("value"):
            causes.append(forbidden("value", "may not be changed in an update."))
        if new.get("preemptionPolicy") != old.get("preemptionPolicy"):
            causes.append(forbidden("preemptionPolicy", "may not be changed in an update."))
        return causes

    def row(self, obj: Obj) -> list[Any]:
        return [obj["metadata"]["name"], int(obj.get("value") or 0), bool(obj.get("globalDefault")), age_of(obj),
                obj.get("preemptionPolicy") or ""]
