"""ClusterRoleBindings: grant a ClusterRole cluster-wide."""

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


class ClusterRoleBindingStrategy(Strategy):
    """rbac.authorization.k8s.io/v1 ClusterRoleBinding."""

    group = "rbac.authorization.k8s.io"
    version = "v1"
    kind = "ClusterRoleBinding"
    resource = "clusterrolebindings"
    singular = "clusterrolebinding"
    namespaced = False
    name_format = "path-segment"
    tracks_generation = False

    columns = binding_columns("clusterRoleBinding")

    def default(self, obj: Obj) -> None:
        default_binding(obj)

    def validate(self, obj: Obj) -> list[Cause]:
        return validate_binding(obj, namespaced=False)

    def validate_update(self, new: Obj, old: Obj) -> list[Cause]:
        return self.validate(new) + role_ref_unchanged(new, old)

    def row(self, obj: Obj) -> list[Any]:
        return binding_cells(obj)
