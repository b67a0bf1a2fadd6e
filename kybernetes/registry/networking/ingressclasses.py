"""IngressClasses: which controller implements an Ingress."""

from __future__ import annotations

from kybernetes.registry.base import Strategy


class IngressClassStrategy(Strategy):
    """networking.k8s.io/v1 IngressClass."""

    group = "networking.k8s.io"
    version = "v1"
    kind = "IngressClass"
    resource = "ingressclasses"
    singular = "ingressclass"
    namespaced = False
