"""Namespaces: the cluster-scoped folders every namespaced object lives in."""

from __future__ import annotations

from kybernetes.registry.base import Strategy


class NamespaceStrategy(Strategy):
    """core/v1 Namespace."""

    group = ""
    version = "v1"
    kind = "Namespace"
    resource = "namespaces"
    singular = "namespace"
    namespaced = False
    short_names = ("ns",)
    verbs = ("create", "delete", "get", "list", "patch", "update", "watch")
    subresources = ("status",)
    future_subresources = ("finalize",)
    name_format = "dns1123-label"
    has_status_split = True
