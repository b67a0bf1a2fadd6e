"""ClusterRoles: cluster-wide sets of permissions, optionally aggregated from others.

No printer upstream: the default table (NAME, CREATED AT)."""

from __future__ import annotations

from typing import Any

from kybernetes.registry.base import CREATED_AT_COLUMN, NAME_COLUMN, Cause, Obj, Strategy, created_at_row
from kybernetes.registry.rbac._common import validate_rules


class ClusterRoleStrategy(Strategy):
    """rbac.authorization.k8s.io/v1 ClusterRole."""

    group = "rbac.authorization.k8s.io"
    version = "v1"
    kind = "ClusterRole"
    resource = "clusterroles"
    singular = "clusterrole"
    namespaced = False
    name_format = "path-segment"
    tracks_generation = False

    columns = (NAME_COLUMN, CREATED_AT_COLUMN)

    def validate(self, obj: Obj) -> list[Cause]:
        return validate_rules(obj.get("rules"), "rules", namespaced=False)

    def row(self, obj: Obj) -> list[Any]:
        return created_at_row(obj)
