"""Namespaces: the cluster-scoped folders every namespaced object lives in.

Create sets the `kubernetes` finalizer and phase Active; the finalizers change afterwards
only through the (future) finalize subresource, so a plain update keeps them.
"""

from __future__ import annotations

from typing import Any

from kybernetes.registry import _checks
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
)

METADATA_NAME_LABEL = "kubernetes.io/metadata.name"
FINALIZER_KUBERNETES = "kubernetes"


class NamespaceStrategy(Strategy):
    """core/v1 Namespace."""

    group = ""
    version = "v1"
    kind = "Namespace"
    resource = "namespaces"
    singular = "namespace"
    namespaced = False
    short_names = ("ns",)
    verbs = ("create", "delete", "get", "list", "patch", "update", "watch")
    subresources = ("status",)
    future_subresources = ("finalize",)
    name_format = "dns1123-label"
    has_status_split = True
    tracks_generation = False
    return_deleted_object = True

    columns = (NAME_COLUMN, column("Status", doc="The status of the namespace"), AGE_COLUMN)
    field_selectors = {"status.phase": lambda o: dig(o, "status", "phase", default="")}

    def default(self, obj: Obj) -> None:
        name = dig(obj, "metadata", "name")
        if name:  # nameless (generateName) objects get it once named
            labels = obj["metadata"].get("labels") or {}
            labels[METADATA_NAME_LABEL] = name
            obj["metadata"]["labels"] = labels

    def prepare_for_create(self, obj: Obj) -> None:
        obj["status"] = {"phase": "Active"}
        spec = obj.get("spec") or {}
        finalizers = list(spec.get("finalizers") or [])
        if FINALIZER_KUBERNETES not in finalizers:
            finalizers.append(FINALIZER_KUBERNETES)
        spec["finalizers"] = finalizers
        obj["spec"] = spec

    def prepare_for_update(self, new: Obj, old: Obj) -> None:
        super().prepare_for_update(new, old)
        # spec.finalizers belong to the finalize subresource
        spec = new.get("spec") or {}
        if dig(old, "spec", "finalizers") is not None:
            spec["finalizers"] = old["spec"]["finalizers"]
        else:
            spec.pop("finalizers", None)
        if spec or "spec" in new:
            new["spec"] = spec

    def validate_status_update(self, new: Obj, old: Obj) -> list[Cause]:
        """The phase must agree with deletionTimestamp (upstream ValidateNamespaceStatusUpdate)."""
        phase = dig(new, "status", "phase", default="")
        if not dig(new, "metadata", "deletionTimestamp"):
            if phase != "Active":
                return [invalid("status.Phase", phase, "may only be 'Active' if `deletionTimestamp` is empty")]
        elif phase != "Terminating":
            return [invalid("status.Phase", phase, "may only be 'Terminating' if `deletionTimestamp` is not empty")]
        return []

    def validate(self, obj: Obj) -> list[Cause]:
        causes: list[Cause] = []
        for i, f in enumerate(dig(obj, "spec", "finalizers", default=[]) or []):
            path = f"spec.finalizers[{i}]"
            msgs = _checks.is_qualified_name(f.lower())
            if msgs:
                causes += [invalid(path, f, m) for m in msgs]
            elif "/" not in f and f != FINALIZER_KUBERNETES:
                causes.append(invalid(path, f, "name is neither a standard finalizer name nor is it fully qualified"))
        return causes

    def row(self, obj: Obj) -> list[Any]:
        return [obj["metadata"]["name"], dig(obj, "status", "phase", default=""), age_of(obj)]
