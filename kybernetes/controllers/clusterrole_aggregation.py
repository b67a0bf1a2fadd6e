"""The ClusterRole aggregation controller (upstream pkg/controller/clusterroleaggregation).

A ClusterRole with an `aggregationRule` gets as its rules the union of the rules of
the ClusterRoles its selectors match (the computation, chains included, is
kybernetes.auth.bootstrap_policy.aggregate).  Any ClusterRole event may change what an
aggregated role should hold, so every event enqueues every aggregated ClusterRole; each
key is then reconciled from the informer cache and written only when its rules differ,
as a compare-and-swap update retried on conflict.
"""

from __future__ import annotations

import copy
from typing import Any, Optional

from kybernetes.auth.bootstrap_policy import aggregation_updates
from kybernetes.client.errors import Conflict, NotFound
from kybernetes.client.rest import Client
from kybernetes.client.workqueue import RateLimiter
from kybernetes.controllers.base import Controller, InformerFactory, Requeue

__all__ = ["ClusterRoleAggregationController", "desired_rules"]

Obj = dict[str, Any]

RBAC_GROUP = "rbac.authorization.k8s.io"


def desired_rules(name: str, cluster_roles: list[Obj]) -> Optional[list[Obj]]:
    """The rules ClusterRole `name` must be given, or None when it is already right (or
    is not aggregated)."""
    return aggregation_updates(cluster_roles).get(name)


class ClusterRoleAggregationController(Controller):
    """Keeps the rules of aggregated ClusterRoles equal to what their selectors match."""

    name = "clusterrole-aggregation"
    workers = 1  # upstream runs 5; one keeps writes to chained roles in order
    conflict_retries = 5

    def __init__(
        self,
        client: Client,
        informers: Optional[InformerFactory] = None,
        *,
        workers: Optional[int] = None,
        rate_limiter: Optional[RateLimiter] = None,
    ) -> None:
        super().__init__(client, informers, workers=workers, rate_limiter=rate_limiter)

    def setup(self) -> None:
        self.api = self.client.resource(RBAC_GROUP, "v1", "clusterroles", namespaced=False)
        self.roles = self.watch(RBAC_GROUP, "v1", "clusterroles", enqueue=None)
        self.roles.add_handlers(on_add=lambda obj: self._enqueue_aggregated(),
                                on_update=lambda old, new: self._enqueue_aggregated(),
                                on_delete=lambda obj: self._enqueue_aggregated())

    def _enqueue_aggregated(self) -> None:
        for role in self.roles.list():
            if role.get("aggregationRule") is not None:
                self.queue.add(role["metadata"]["name"])

    async def reconcile(self, key: str) -> None:
        roles = self.roles.list()
        for _ in range(self.conflict_retries):
            current = next((r for r in roles if (r.get("metadata") or {}).get("name") == key), None)
            if current is None or current.get("aggregationRule") is None:
                return
            rules = desired_rules(key, roles)
            if rules is None:
                return  # already the union: nothing to write
            new = copy.deepcopy(current)
            new["rules"] = rules
            try:
                # PUT with the resourceVersion it was computed from: a compare-and-swap
                await self.api.update(new)
                self.log.info("clusterrole %s: aggregated %d rules", key, len(rules))
                return
            except NotFound:
                return
            except Conflict:
                # someone else wrote it: start again from the live object
                try:
                    fresh = await self.api.get(key)
                except NotFound:
                    return
                roles = [fresh if (r.get("metadata") or {}).get("name") == key else r for r in self.roles.list()]
                if not any((r.get("metadata") or {}).get("name") == key for r in roles):
                    roles.append(fresh)
        raise Requeue(reason=f"clusterrole {key}: kept conflicting")
