"""CSINodes: CSI drivers installed on a node."""

from __future__ import annotations

from kybernetes.registry.base import Strategy


class CSINodeStrategy(Strategy):
    """storage.k8s.io/v1 CSINode."""

    group = "storage.k8s.io"
    version = "v1"
    kind = "CSINode"
    resource = "csinodes"
    singular = "csinode"
    namespaced = False
