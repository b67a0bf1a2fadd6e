"""Roles: namespaced sets of permissions."""

from __future__ import annotations

from kybernetes.registry.base import Strategy


class RoleStrategy(Strategy):
    """rbac.authorization.k8s.io/v1 Role."""

    group = "rbac.authorization.k8s.io"
    version = "v1"
    kind = "Role"
    resource = "roles"
    singular = "role"
    name_format = "path-segment"
