"""CSIDrivers: properties of an installed CSI driver."""

from __future__ import annotations

from kybernetes.registry.base import Strategy


class CSIDriverStrategy(Strategy):
    """storage.k8s.io/v1 CSIDriver."""

    group = "storage.k8s.io"
    version = "v1"
    kind = "CSIDriver"
    resource = "csidrivers"
    singular = "csidriver"
    namespaced = False
