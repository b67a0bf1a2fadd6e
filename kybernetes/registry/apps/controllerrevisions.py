"""ControllerRevisions: immutable snapshots of state used for rollback (DaemonSet, StatefulSet)."""

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
    immutable,
    nonnegative,
)


def controller_name(obj: Obj) -> str:
    """"<kind>.<group>/<name>" of the controlling owner, lower-cased, or "<none>"."""
    for ref in dig(obj, "metadata", "ownerReferences", default=[]) or []:
        if ref.get("controller"):
            group = (ref.get("apiVersion") or "").rpartition("/")[0]
            kind = ref.get("kind") or ""
            gk = f"{kind}.{group}" if group else kind
            return f"{gk.lower()}/{ref.get('name', '')}" if gk else ref.get("name", "")
    return "<none>"


class ControllerRevisionStrategy(Strategy):
    """apps/v1 ControllerRevision."""

    group = "apps"
    version = "v1"
    kind = "ControllerRevision"
    resource = "controllerrevisions"
    singular = "controllerrevision"
    tracks_generation = False

    columns = (
        NAME_COLUMN,
        column("Controller", doc="Controller of the object"),
        column("Revision", doc=("io.k8s.api.apps.v1.ControllerRevision", "revision")),
        AGE_COLUMN,
    )

    def validate(self, obj: Obj) -> list[Cause]:
        return nonnegative("revision", obj.get("revision"))

    def validate_update(self, new: Obj, old: Obj) -> list[Cause]:
        causes = self.validate(new)
        if new.get("data") != old.get("data"):
            causes.append(immutable("data", new.get("data")))
        return causes

    def row(self, obj: Obj) -> list[Any]:
        return [obj["metadata"]["name"], controller_name(obj), int(obj.get("revision") or 0), age_of(obj)]
