"""ResourceQuotas: per-namespace aggregate resource limits."""

from __future__ import annotations

from kybernetes.registry.base import Strategy


class ResourceQuotaStrategy(Strategy):
    """core/v1 ResourceQuota."""

    group = ""
    version = "v1"
    kind = "ResourceQuota"
    resource = "resourcequotas"
    singular = "resourcequota"
    short_names = ("quota",)
    subresources = ("status",)
    has_status_split = True
