"""ConfigMaps: non-secret configuration data."""

from __future__ import annotations

from kybernetes.registry.base import Strategy


class ConfigMapStrategy(Strategy):
    """core/v1 ConfigMap."""

    group = ""
    version = "v1"
    kind = "ConfigMap"
    resource = "configmaps"
    singular = "configmap"
    short_names = ("cm",)
