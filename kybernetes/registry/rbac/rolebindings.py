"""RoleBindings: grant a Role or ClusterRole within a namespace."""

from __future__ import annotations

from kybernetes.registry.base import Strategy


class RoleBindingStrategy(Strategy):
    """rbac.authorization.k8s.io/v1 RoleBinding."""

    group = "rbac.authorization.k8s.io"
    version = "v1"
    kind = "RoleBinding"
    resource = "rolebindings"
    singular = "rolebinding"
    name_format = "path-segment"
