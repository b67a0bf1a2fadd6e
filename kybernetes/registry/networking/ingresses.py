"""Ingresses: HTTP routing into services."""

from __future__ import annotations

from kybernetes.registry.base import Strategy


class IngressStrategy(Strategy):
    """networking.k8s.io/v1 Ingress."""

    group = "networking.k8s.io"
    version = "v1"
    kind = "Ingress"
    resource = "ingresses"
    singular = "ingress"
    short_names = ("ing",)
    subresources = ("status",)
    has_status_split = True
