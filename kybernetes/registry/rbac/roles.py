"""Roles: namespaced sets of permissions.

No printer upstream: the default table (NAME, CREATED AT)."""

from __future__ import annotations

from typing import Any

from kybernetes.registry.base import CREATED_AT_COLUMN, NAME_COLUMN, Cause, Obj, Strategy, created_at_row
from kybernetes.registry.rbac._common import validate_rules


class RoleStrategy(Strategy):
    """rbac.authorization.k8s.io/v1 Role."""

    group = "rbac.authorization.k8s.io"
    version = "v1"
    kind = "Role"
    resource = "roles"
    singular = "role"
    name_format = "path-segment"
    tracks_generation = False

    columns = (NAME_COLUMN, CREATED_AT_COLUMN)

    def validate(self, obj: Obj) -> list[Cause]:
        return validate_rules(obj.get("rules"), "rules", namespaced=True)

    def row(self, obj: Obj) -> list[Any]:
        return created_at_row(obj)
