"""IngressClasses: which controller implements an Ingress."""

from __future__ import annotations

from typing import Any

from kybernetes.registry._checks import domain_prefixed_path_causes
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
    too_long,
)

MAX_CONTROLLER_LEN = 250


def parameters_cell(obj: Obj) -> str:
    p = dig(obj, "spec", "parameters")
    if not p:
        return "<none>"
    kind = p.get("kind", "")
    if p.get("apiGroup") is not None:
        kind += "." + p["apiGroup"]
    return f"{kind}/{p.get('name', '')}"


class IngressClassStrategy(Strategy):
    """networking.k8s.io/v1 IngressClass."""

    group = "networking.k8s.io"
    version = "v1"
    kind = "IngressClass"
    resource = "ingressclasses"
    singular = "ingressclass"
    namespaced = False

    columns = (
        NAME_COLUMN,
        column("Controller", doc="Controller that is responsible for handling this class"),
        column("Parameters", doc="A reference to a resource with additional parameters"),
        AGE_COLUMN,
    )

    def validate(self, obj: Obj) -> list[Cause]:
        controller = dig(obj, "spec", "controller", default="") or ""
        if len(controller) > MAX_CONTROLLER_LEN:
            return [too_long("spec.controller", MAX_CONTROLLER_LEN)]
        return domain_prefixed_path_causes(controller, "spec.controller")

    def validate_update(self, new: Obj, old: Obj) -> list[Cause]:
        causes = self.validate(new)
        if dig(new, "spec", "controller") != dig(old, "spec", "controller"):
            causes.append(immutable("spec.controller", dig(new, "spec", "controller", default="")))
        return causes

    def row(self, obj: Obj) -> list[Any]:
        return [obj["metadata"]["name"], dig(obj, "spec", "controller", default=""), parameters_cell(obj), age_of(obj)]
