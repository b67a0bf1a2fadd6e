"""The resource quota controller (upstream pkg/controller/resourcequota).

Keeps every ResourceQuota's status true: `status.hard` is `spec.hard`, `status.used` the
usage of the objects that exist in the namespace (for each resource named in hard; zero
when none).  A quota is recalculated when it is created or its spec changes, when an
object it may count is deleted (or a pod finishes, freeing its compute resources), and
every `resync_period` seconds (upstream --resource-quota-sync-period, 5 minutes).
Admission charges creates as they happen; this controller corrects what admission cannot
see (deletes, creates that failed after the charge)."""

from __future__ import annotations

import asyncio
import copy
from typing import Any, Optional

from kybernetes.admission.resourcequota import (
    Evaluator,
    Q,
    ResourceList,
    add,
    evaluator_for,
    format_list,
    mask,
    parse_list,
    pod_terminal,
    registered_evaluators,
    scope_selectors,
)
from kybernetes.client.errors import NotFound
from kybernetes.client.rest import Client
from kybernetes.client.workqueue import RateLimiter
from kybernetes.controllers.base import Controller, InformerFactory

__all__ = ["ResourceQuotaController", "calculate_usage"]

Obj = dict[str, Any]

# the kinds whose deletion is replenished at once (upstream's replenishment informers)
_REPLENISHED = ("pods", "services", "persistentvolumeclaims", "configmaps", "secrets", "replicationcontrollers")


def _evaluators_for(hard: dict) -> list[Evaluator]:
    """The registered evaluators a quota needs, plus object counters for `count/<r>.<g>`."""
    registered = registered_evaluators()
    out = [e for e in registered if e.matching_resources(hard)]
    for name in sorted(hard):
        if name.startswith("count/") and not any(e.matching_resources([name]) for e in registered):
            resource, _, group = name[len("count/"):].partition(".")
            out.append(evaluator_for(group, resource, _preferred_version(group, resource)))
    return out


def _preferred_version(group: str, resource: str) -> str:
    from kybernetes.api.catalog import default_catalog

    catalog = default_catalog()
    for version in catalog.groups.get(group, []):
        if catalog.lookup(group, version, resource) is not None:
            return version
    return "v1"


def calculate_usage(quota: Obj, objects_by_evaluator: list[tuple[Evaluator, list[Obj]]]) -> ResourceList:
    """quota.CalculateUsage: zero for every resource the evaluators answer to, plus the usage
    of each object that matches the quota's scopes, masked to the hard resources."""
    hard = (quota.get("spec") or {}).get("hard") or {}
    selectors = scope_selectors(quota)
    used: ResourceList = {}
    for ev, objs in objects_by_evaluator:
        names = ev.matching_resources(hard)
        if not names:
            continue
        for n in names:
            used.setdefault(n, Q(0))
        for obj in objs:
            if selectors and not all(ev.matches_scope(sel, obj) for sel in selectors):
                continue
            used = add(used, mask(ev.usage(obj), names))
    return mask(used, hard)


def _hard_equal(a: Optional[dict], b: Optional[dict]) -> bool:
    if a is None or b is None:
        return a is b
    return set(a) == set(b) and all(parse_list({k: a[k]}) == parse_list({k: b[k]}) for k in a)


class ResourceQuotaController(Controller):
    name = "resourcequota"
    workers = 2

    def __init__(
        self,
        client: Client,
        informers: Optional[InformerFactory] = None,
        *,
        workers: Optional[int] = None,
        rate_limiter: Optional[RateLimiter] = None,
        resync_period: float = 300.0,
    ) -> None:
        self.resync_period = resync_period
        self._resync_task: Optional[asyncio.Task[None]] = None
        super().__init__(client, informers, workers=workers, rate_limiter=rate_limiter)

    def setup(self) -> None:
        self.quota_api = self.client.resource("", "v1", "resourcequotas", namespaced=True)
        self.quotas = self.watch("", "v1", "resourcequotas", enqueue=None)
        self.quotas.add_handlers(on_add=self._enqueue_quota, on_update=self._quota_updated)
        for resource in _REPLENISHED:
            inf = self.watch("", "v1", resource, enqueue=None)
            inf.add_handlers(on_delete=self._replenish)
            if resource == "pods":
                inf.add_handlers(on_update=self._pod_updated)

    # ------------------------------------------------------------------ events
    def _enqueue_quota(self, q: Obj) -> None:
        meta = q.get("metadata") or {}
        self.queue.add(f"{meta.get('namespace')}/{meta.get('name')}")

    def _quota_updated(self, old: Obj, new: Obj) -> None:
        # only a spec change (or a status not yet matching it): admission's status writes
        # must not make us recount while the object they charged for is being stored
        spec_changed = (old.get("spec") or {}) != (new.get("spec") or {})
        status = new.get("status") or {}
        if spec_changed or not _hard_equal((new.get("spec") or {}).get("hard") or {}, status.get("hard")) \
                or status.get("used") is None:
            self._enqueue_quota(new)

    def _replenish(self, obj: Obj) -> None:
        ns = (obj.get("metadata") or {}).get("namespace")
        if ns:
            for q in self.quotas.by_namespace(ns):
                self._enqueue_quota(q)

    def _pod_updated(self, old: Obj, new: Obj) -> None:
        if not pod_terminal(old) and pod_terminal(new):
            self._replenish(new)

    # ------------------------------------------------------------------ periodic
    async def start(self, *, sync_timeout: Optional[float] = None) -> None:
        await super().start(sync_timeout=sync_timeout)
        if self.resync_period > 0:
            self._resync_task = asyncio.get_running_loop().create_task(self._resync(), name="resourcequota resync")

    async def _resync(self) -> None:
        while True:
            await asyncio.sleep(self.resync_period)
            for q in self.quotas.list():
                self._enqueue_quota(q)

    async def on_stop(self) -> None:
        task, self._resync_task = self._resync_task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    # ------------------------------------------------------------------ sync
    async def _list(self, ev: Evaluator, namespace: str) -> list[Obj]:
        try:
            handle = self.client.resource(ev.group, ev.version, ev.resource, namespaced=True)
            return list((await handle.list(namespace)).get("items") or [])
        except NotFound:
            return []  # a resource this server does not serve counts nothing

    async def reconcile(self, key: str) -> None:
        namespace, _, name = key.partition("/")
        # from the informer cache, as upstream's lister: its role (system:controller:
        # resourcequota-controller) may list and watch quotas but not get them; a stale copy
        # makes the status write conflict, and the key is retried
        cached = self.quotas.get(key)
        if cached is None:
            return
        quota = copy.deepcopy(cached)
        hard = dict((quota.get("spec") or {}).get("hard") or {})
        evaluators = _evaluators_for(hard)
        listed = [(ev, await self._list(ev, namespace)) for ev in evaluators]
        used = format_list(calculate_usage(quota, listed))
        status = quota.get("status") or {}
        old_used = status.get("used")
        dirty = (status.get("hard") is None or old_used is None or not _hard_equal(hard, status.get("hard"))
                 or not _hard_equal(used, old_used))
        if not dirty:
            return
        quota["status"] = {"hard": hard, "used": used}
        await self.quota_api.update_status(quota, namespace)
        self.log.debug("quota %s: used %s", key, used)
