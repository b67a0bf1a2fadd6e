"""Leases: leader election and node heartbeats."""

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
    invalid,
    nonnegative,
)


class LeaseStrategy(Strategy):
    """coordination.k8s.io/v1 Lease."""

    group = "coordination.k8s.io"
    version = "v1"
    kind = "Lease"
    resource = "leases"
    singular = "lease"
    tracks_generation = False

    columns = (NAME_COLUMN, column("Holder", doc=("io.k8s.api.coordination.v1.LeaseSpec", "holderIdentity")),
               AGE_COLUMN)

    def validate(self, obj: Obj) -> list[Cause]:
        spec = obj.get("spec") or {}
        causes: list[Cause] = []
        d = spec.get("leaseDurationSeconds")
        if d is not None and d <= 0:
            causes.append(invalid("spec.leaseDurationSeconds", d, "must be greater than 0"))
        causes += nonnegative("spec.leaseTransitions", spec.get("leaseTransitions"))
        return causes

    def row(self, obj: Obj) -> list[Any]:
        return [obj["metadata"]["name"], dig(obj, "spec", "holderIdentity", default="") or "", age_of(obj)]
