"""ClusterRoleBindings: grant a ClusterRole cluster-wide."""

from __future__ import annotations

from kybernetes.registry.base import Strategy


class ClusterRoleBindingStrategy(Strategy):
    """rbac.authorization.k8s.io/v1 ClusterRoleBinding."""

    group = "rbac.authorization.k8s.io"
    version = "v1"
    kind = "ClusterRoleBinding"
    resource = "clusterrolebindings"
    singular = "clusterrolebinding"
    namespaced = False
    name_format = "path-segment"
