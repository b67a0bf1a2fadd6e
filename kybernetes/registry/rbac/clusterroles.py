"""ClusterRoles: cluster-wide sets of permissions, optionally aggregated."""

from __future__ import annotations

from kybernetes.registry.base import Strategy


class ClusterRoleStrategy(Strategy):
    """rbac.authorization.k8s.io/v1 ClusterRole."""

    group = "rbac.authorization.k8s.io"
    version = "v1"
    kind = "ClusterRole"
    resource = "clusterroles"
    singular = "clusterrole"
    namespaced = False
    name_format = "path-segment"
