"""ServiceAccounts: identities for processes in pods; the token subresource mints tokens."""

from __future__ import annotations

from typing import Any

from kybernetes.registry.base import AGE_COLUMN, NAME_COLUMN, Obj, Strategy, age_of, column


class ServiceAccountStrategy(Strategy):
    """core/v1 ServiceAccount."""

    group = ""
    version = "v1"
    kind = "ServiceAccount"
    resource = "serviceaccounts"
    singular = "serviceaccount"
    short_names = ("sa",)
    subresources = ("token",)
    tracks_generation = False
    return_deleted_object = True

    columns = (NAME_COLUMN, column("Secrets", doc=("io.k8s.api.core.v1.ServiceAccount", "secrets")), AGE_COLUMN)

    def row(self, obj: Obj) -> list[Any]:
        return [obj["metadata"]["name"], len(obj.get("secrets") or []), age_of(obj)]
