"""RoleBindings: grant a Role or ClusterRole within a namespace."""

from __future__ import annotations

from typing import Any

from kybernetes.registry.base import Cause, Obj, Strategy
from kybernetes.registry.rbac._common import (
    binding_cells,
    binding_columns,
    default_binding,
    role_ref_unchanged,
    validate_binding,
)


class RoleBindingStrategy(Strategy):
    """rbac.authorization.k8s.io/v1 RoleBinding."""

    group = "rbac.authorization.k8s.io"
    version = "v1"
    kind = "RoleBinding"
    resource = "rolebindings"
    singular = "rolebinding"
    name_format = "path-segment"
    tracks_generation = False

    columns = binding_columns("roleBinding")

    def default(self, obj: Obj) -> None:
        default_binding(obj)

    def validate(self, obj: Obj) -> list[Cause]:
        return validate_binding(obj, namespaced=True)

    def validate_update(self, new: Obj, old: Obj) -> list[Cause]:
        return self.validate(new) + role_ref_unchanged(new, old)

    def row(self, obj: Obj) -> list[Any]:
        return binding_cells(obj)
