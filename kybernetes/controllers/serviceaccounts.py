"""The service account controller (upstream pkg/controller/serviceaccount,
serviceaccounts_controller.go).

Every active namespace gets the ServiceAccounts this controller ensures — by default
just `default`.  A namespace is looked at when it is added or changes, and again when
one of its ServiceAccounts is deleted, so a deleted `default` comes back.  Terminating
namespaces are left alone (and a create refused because the namespace started
terminating meanwhile is not an error).
"""

from __future__ import annotations

import copy
from typing import Any, Optional, Sequence

from kybernetes.client.errors import AlreadyExists, APIStatusError, NotFound
from kybernetes.client.rest import Client
from kybernetes.client.workqueue import RateLimiter
from kybernetes.controllers.base import Controller, InformerFactory, ReconcileError

__all__ = ["ServiceAccountsController", "DEFAULT_SERVICE_ACCOUNTS", "namespace_is_active", "namespace_terminating_error"]

Obj = dict[str, Any]

DEFAULT_SERVICE_ACCOUNTS: tuple[Obj, ...] = ({"metadata": {"name": "default"}},)


def namespace_is_active(ns: Obj) -> bool:
    """Active and not being deleted (a namespace whose phase is not set yet counts as
    active as long as it has no deletionTimestamp)."""
    if (ns.get("metadata") or {}).get("deletionTimestamp"):
        return False
    return ((ns.get("status") or {}).get("phase") or "Active") == "Active"


def namespace_terminating_error(e: APIStatusError) -> bool:
    """A create refused because its namespace is being terminated (the status cause
    `NamespaceTerminating`, as upstream's HasStatusCause checks)."""
    causes = (e.details or {}).get("causes") or []
    return any(isinstance(c, dict) and c.get("reason") == "NamespaceTerminating" for c in causes)


class ServiceAccountsController(Controller):
    """Ensures `default` (or the configured accounts) in every active namespace."""

    name = "serviceaccount"
    workers = 2  # upstream --concurrent-serviceaccount-syncs (default 5)

    def __init__(
        self,
        client: Client,
        informers: Optional[InformerFactory] = None,
        *,
        workers: Optional[int] = None,
        rate_limiter: Optional[RateLimiter] = None,
        service_accounts: Sequence[Obj] = DEFAULT_SERVICE_ACCOUNTS,
    ) -> None:
        self.service_accounts = [copy.deepcopy(sa) for sa in service_accounts]
        super().__init__(client, informers, workers=workers, rate_limiter=rate_limiter)

    def setup(self) -> None:
        self.sa_api = self.client.resource("", "v1", "serviceaccounts", namespaced=True)
        # namespaces: added or changed -> look at that namespace
        self.namespaces = self.watch("", "v1", "namespaces", enqueue=self._namespace_key)
        # service accounts: only a deletion matters (the namespace may need it back)
        self.sas = self.watch("", "v1", "serviceaccounts", enqueue=None)
        self.sas.add_handlers(on_delete=self._sa_deleted)

    @staticmethod
    def _namespace_key(ns: Obj) -> Optional[str]:
        return (ns.get("metadata") or {}).get("name") or None

    def _sa_deleted(self, sa: Obj) -> None:
        ns = (sa.get("metadata") or {}).get("namespace")
        if ns:
            self.queue.add(ns)

    async def reconcile(self, key: str) -> None:
        ns = self.namespaces.get(key)
        if ns is None or not namespace_is_active(ns):
            return
        failures: list[str] = []
        for want in self.service_accounts:
            name = want["metadata"]["name"]
            if self.sas.get(f"{key}/{name}") is not None:
                continue
            body = copy.deepcopy(want)
            body.setdefault("apiVersion", "v1")
            body.setdefault("kind", "ServiceAccount")
            body["metadata"]["namespace"] = key
            try:
                await self.sa_api.create(body, key)
                self.log.info("namespace %s: created service account %s", key, name)
            except AlreadyExists:
                pass  # the cache was behind; it is there
            except NotFound:
                return  # the namespace went away meanwhile
            except APIStatusError as e:
                if namespace_terminating_error(e):
                    return
                failures.append(f"{name}: {e}")
        if failures:
            raise ReconcileError(f"namespace {key}: " + "; ".join(failures))
