"""RuntimeClasses: named container runtime configurations (node.k8s.io/v1).

`handler` names the CRI runtime handler a node uses for pods of the class; it is a
required DNS-1123 label and never changes.  `overhead.podFixed` is what the RuntimeClass
admission plugin copies into a pod's `spec.overhead`; `scheduling` is merged into the pod's
node selector and tolerations (upstream pkg/apis/node/validation, pkg/registry/node)."""

from __future__ import annotations

from typing import Any

from kybernetes.api.names import is_dns1123_label
from kybernetes.api.validation import validate_labels
from kybernetes.registry.base import (
    AGE_COLUMN,
    NAME_COLUMN,
    Cause,
    Obj,
    Strategy,
    age_of,
    column,
    duplicate,
    immutable,
    invalid,
    not_supported,
    parse_quantity,
    required,
)

_RC = "io.k8s.api.node.v1.RuntimeClass"
TOLERATION_OPERATORS = ("Equal", "Exists")
TAINT_EFFECTS = ("NoExecute", "NoSchedule", "PreferNoSchedule")


class RuntimeClassStrategy(Strategy):
    """node.k8s.io/v1 RuntimeClass."""

    group = "node.k8s.io"
    version = "v1"
    kind = "RuntimeClass"
    resource = "runtimeclasses"
    singular = "runtimeclass"
    namespaced = False
    tracks_generation = False

    columns = (
        NAME_COLUMN,
        column("Handler", doc=(_RC, "handler")),
        AGE_COLUMN,
    )

    def validate(self, obj: Obj) -> list[Cause]:
        causes: list[Cause] = []
        handler = obj.get("handler")
        if not handler:
            causes.append(required("handler"))
        else:
            causes += [invalid("handler", handler, m) for m in is_dns1123_label(handler)]
        overhead = obj.get("overhead")
        if overhead is not None:
            causes += _validate_pod_fixed(overhead.get("podFixed") or {}, "overhead.podFixed")
        scheduling = obj.get("scheduling")
        if scheduling is not None:
            causes += validate_labels(scheduling.get("nodeSelector"), "scheduling.nodeSelector")
            causes += _validate_tolerations(scheduling.get("tolerations") or [], "scheduling.tolerations")
        return causes

    def validate_update(self, new: Obj, old: Obj) -> list[Cause]:
        """Upstream checks only the handler on update (overhead and scheduling may change)."""
        causes = self.validate(new)
        if new.get("handler") != old.get("handler"):
            causes.append(immutable("handler", new.get("handler")))
        return causes

    def row(self, obj: Obj) -> list[Any]:
        return [obj["metadata"]["name"], obj.get("handler") or "", age_of(obj)]


def _validate_pod_fixed(pod_fixed: dict[str, Any], path: str) -> list[Cause]:
    """Each overhead is a non-negative quantity of a standard or qualified resource name."""
    causes: list[Cause] = []
    for name, value in pod_fixed.items():
        q = parse_quantity(value)
        if q is not None and q < 0:
            causes.append(invalid(f"{path}[{name}]", str(value), "must be greater than or equal to 0"))
    return causes


def _validate_tolerations(tolerations: list[Obj], path: str) -> list[Cause]:
    """core ValidateTolerations, plus upstream's RuntimeClass rule that no two tolerations
    share key, operator, value and effect."""
    causes: list[Cause] = []
    seen: set[tuple[str, str, str, str]] = set()
    for i, t in enumerate(tolerations):
        p = f"{path}[{i}]"
        key, op, value, effect = (t.get("key") or "", t.get("operator") or "", t.get("value") or "",
                                  t.get("effect") or "")
        if op and op not in TOLERATION_OPERATORS:
            causes.append(not_supported(f"{p}.operator", op, TOLERATION_OPERATORS))
        if not key and op != "Exists":
            causes.append(invalid(f"{p}.operator", op, "operator must be Exists when `key` is empty, "
                                                       "which means \"match all values and all keys\""))
        if op == "Exists" and value:
            causes.append(invalid(f"{p}.operator", t, "value must be empty when `operator` is 'Exists'"))
        if t.get("tolerationSeconds") is not None and effect != "NoExecute":
            causes.append(invalid(f"{p}.effect", effect,
                                  "effect must be 'NoExecute' when `tolerationSeconds` is set"))
        if effect and effect not in TAINT_EFFECTS:
            causes.append(not_supported(f"{p}.effect", effect, TAINT_EFFECTS))
        ident = (key, op or "Equal", value, effect)
        if ident in seen:
            causes.append(duplicate(p, t))
        seen.add(ident)
    return causes


