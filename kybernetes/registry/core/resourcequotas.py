"""ResourceQuotas: per-namespace aggregate resource limits (used/hard shown per resource)."""

from __future__ import annotations

from typing import Any

from kybernetes.api.goformat import go_quote
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
    parse_quantity,
)


def quota_cells(obj: Obj) -> tuple[str, str]:
    """REQUEST and LIMIT cells: "resource: used/hard" pairs, limits.* in the second."""
    hard = dig(obj, "status", "hard") or {}
    used = dig(obj, "status", "used") or {}
    requests, limits = [], []
    for name in sorted(hard):
        target = limits if name.split(".")[0] == "limits" and "." in name else requests
        target.append(f"{name}: {used.get(name, '0')}/{hard[name]}")
    return ", ".join(requests), ", ".join(limits)


class ResourceQuotaStrategy(Strategy):
    """core/v1 ResourceQuota."""

    group = ""
    version = "v1"
    kind = "ResourceQuota"
    resource = "resourcequotas"
    singular = "resourcequota"
    short_names = ("quota",)
    subresources = ("status",)
    has_status_split = True
    tracks_generation = False

    columns = (
        NAME_COLUMN,
        column("Request", doc="Request represents a minimum amount of cpu/memory that a container may consume."),
        column("Limit", doc="Limits control the maximum amount of cpu/memory that a container may use "
                            "independent of contention on the node."),
        AGE_COLUMN,
    )

    def validate(self, obj: Obj) -> list[Cause]:
        causes: list[Cause] = []
        for k, v in (dig(obj, "spec", "hard") or {}).items():
            q = parse_quantity(v)
            if q is not None and q < 0:
                causes.append(invalid(f"spec.hard[{k}]", str(v), "must be greater than or equal to 0"))
        return causes

    def validate_update(self, new: Obj, old: Obj) -> list[Cause]:
        """upstream ValidateResourceQuotaUpdate: the set of scopes is fixed at creation."""
        causes = self.validate(new)
        scopes = dig(new, "spec", "scopes", default=[]) or []
        if set(scopes) != set(dig(old, "spec", "scopes", default=[]) or []):
            rendered = "[]core.ResourceQuotaScope{" + ", ".join(go_quote(x) for x in scopes) + "}"
            causes.append(Cause("FieldValueInvalid", "spec.scopes", f"Invalid value: {rendered}: field is immutable"))
        return causes

    def row(self, obj: Obj) -> list[Any]:
        request, limit = quota_cells(obj)
        return [obj["metadata"]["name"], request, limit, age_of(obj)]
