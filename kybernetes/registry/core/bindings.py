"""Bindings: the create-only resource (and pods/binding subresource) that binds a pod to a node."""

from __future__ import annotations

from kybernetes.registry.base import Cause, Obj, Strategy, dig, not_supported, required


def validate_binding(obj: Obj) -> list[Cause]:
    """upstream ValidatePodBinding: a Node target with a name."""
    causes: list[Cause] = []
    kind = dig(obj, "target", "kind", default="")
    if kind and kind != "Node":
        causes.append(not_supported("target.kind", kind, ["Node", "<empty>"]))
    if not dig(obj, "target", "name"):
        causes.append(required("target.name"))
    return causes


class BindingStrategy(Strategy):
    """core/v1 Binding."""

    group = ""
    version = "v1"
    kind = "Binding"
    resource = "bindings"
    singular = "binding"
    verbs = ("create",)
    persisted = False  # a Binding sets the pod's spec.nodeName; it is never stored itself
    tracks_generation = False

    def validate(self, obj: Obj) -> list[Cause]:
        return validate_binding(obj)
