"""ServiceAccounts: identities for processes in pods; token subresource mints tokens."""

from __future__ import annotations

from kybernetes.registry.base import Strategy


class ServiceAccountStrategy(Strategy):
    """core/v1 ServiceAccount."""

    group = ""
    version = "v1"
    kind = "ServiceAccount"
    resource = "serviceaccounts"
    singular = "serviceaccount"
    short_names = ("sa",)
    subresources = ("token",)
