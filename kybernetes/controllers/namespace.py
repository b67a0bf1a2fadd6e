"""The namespace lifecycle controller (upstream pkg/controller/namespace).

When a Namespace is being deleted (deletionTimestamp set, phase Terminating) it deletes
every object in it, for every served namespaced resource that can be listed and
deleted, reports progress in the namespace's status conditions, waits until the content
is gone, and then removes its `kubernetes` finalizer through the finalize subresource;
the API server removes the namespace once no finalizers remain.

Waiting is event-driven: while content remains, the controller watches the resources
that still have objects in that namespace and re-queues the namespace on each change;
a delayed requeue (half upstream's termination estimate) is the safety net.
"""

from __future__ import annotations

import asyncio
import copy
import logging
from dataclasses import dataclass, field
from typing import Any, Optional

from kybernetes.client.discovery import APIResource, DiscoveryError
from kybernetes.client.errors import APIStatusError, Conflict, Gone, MethodNotAllowed, NotFound, TransportError
from kybernetes.client.rest import Client
from kybernetes.client.workqueue import (
    BucketRateLimiter,
    ItemExponentialFailureRateLimiter,
    MaxOfRateLimiter,
    RateLimiter,
)
from kybernetes.controllers.base import Controller, InformerFactory, ReconcileError, Requeue

__all__ = ["NamespaceController", "FINALIZER", "CONDITION_TYPES", "ContentDeletionError"]

log = logging.getLogger("kybernetes.controllers.namespace")

Obj = dict[str, Any]

FINALIZER = "kubernetes"
# an item held by finalizers gets this long (seconds) before the next look (upstream)
FINALIZER_ESTIMATE_SECONDS = 15

DISCOVERY_FAILURE = "NamespaceDeletionDiscoveryFailure"
GV_PARSING_FAILURE = "NamespaceDeletionGroupVersionParsingFailure"
CONTENT_FAILURE = "NamespaceDeletionContentFailure"
CONTENT_REMAINING = "NamespaceContentRemaining"
FINALIZERS_REMAINING = "NamespaceFinalizersRemaining"

# the conditions this controller owns, in upstream's order, with their "all is well" forms
CONDITION_TYPES = (DISCOVERY_FAILURE, GV_PARSING_FAILURE, CONTENT_FAILURE, CONTENT_REMAINING, FINALIZERS_REMAINING)
_OK = {
    DISCOVERY_FAILURE: ("ResourcesDiscovered", "All resources successfully discovered"),
    GV_PARSING_FAILURE: ("ParsedGroupVersions", "All legacy kube types successfully parsed"),
    CONTENT_FAILURE: ("ContentDeleted", "All content successfully deleted, may be waiting on finalization"),
    CONTENT_REMAINING: ("ContentRemoved", "All content successfully removed"),
    FINALIZERS_REMAINING: ("ContentHasNoFinalizers", "All content-preserving finalizers finished"),
}


def _now() -> str:
    from datetime import datetime, timezone

    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _gvr_string(r: APIResource) -> str:
    # as Go prints a schema.GroupVersionResource: "apps/v1, Resource=deployments"
    return f"{r.group}/{r.version}, Resource={r.resource}"


def _err_text(e: BaseException) -> str:
    return e.message if isinstance(e, APIStatusError) and e.message else str(e)


class ContentDeletionError(ReconcileError):
    """Some content could not be deleted (or discovered); the namespace is retried."""


@dataclass
class _Totals:
    """What one pass over a namespace's content found."""

    remaining: dict[APIResource, int] = field(default_factory=dict)
    finalizers: dict[str, int] = field(default_factory=dict)
    list_rv: dict[APIResource, str] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    estimate: int = 0


def _condition(ctype: str, status: str, reason: str, message: str) -> Obj:
    return {"type": ctype, "status": status, "lastTransitionTime": _now(), "reason": reason, "message": message}


def build_conditions(discovery_error: Optional[str], totals: _Totals) -> dict[str, Obj]:
    """The failure conditions of one pass (types absent here are reported as fine)."""
    out: dict[str, Obj] = {}
    if discovery_error is not None:
        out[DISCOVERY_FAILURE] = _condition(DISCOVERY_FAILURE, "True", "DiscoveryFailed", discovery_error)
    if totals.remaining:
        parts = sorted(f"{r.resource}.{r.group} has {n} resource instances" for r, n in totals.remaining.items() if n)
        out[CONTENT_REMAINING] = _condition(CONTENT_REMAINING, "True", "SomeResourcesRemain",
                                            f"Some resources are remaining: {', '.join(parts)}")
    if totals.finalizers:
        parts = sorted(f"{f} in {n} resource instances" for f, n in totals.finalizers.items() if n)
        out[FINALIZERS_REMAINING] = _condition(
            FINALIZERS_REMAINING, "True", "SomeFinalizersRemain",
            f"Some content in the namespace has finalizers remaining: {', '.join(parts)}")
    if totals.errors:
        msgs = sorted(totals.errors)
        out[CONTENT_FAILURE] = _condition(
            CONTENT_FAILURE, "True", "ContentDeletionFailed",
            f"Failed to delete all resource types, {len(msgs)} remaining: {', '.join(msgs)}")
    return out


def update_conditions(status: Obj, failures: dict[str, Obj]) -> bool:
    """Bring status.conditions in line with `failures` (others become their OK form);
    lastTransitionTime moves only when a condition's status flips.  Returns whether
    anything changed."""
    conditions: list[Obj] = status.setdefault("conditions", []) or []
    status["conditions"] = conditions
    changed = False
    for ctype in CONDITION_TYPES:
        new = failures.get(ctype)
        if new is None:
            reason, message = _OK[ctype]
            new = _condition(ctype, "False", reason, message)
        old = next((c for c in conditions if c.get("type") == ctype), None)
        if old is None:
            conditions.append(new)
            changed = True
        elif (old.get("status"), old.get("reason"), old.get("message")) != (new["status"], new["reason"], new["message"]):
            if old.get("status") != new["status"]:
                old["lastTransitionTime"] = new["lastTransitionTime"]
            old.update(status=new["status"], reason=new["reason"], message=new["message"])
            changed = True
    return changed


def _default_rate_limiter() -> RateLimiter:
    # upstream's namespace controller: 5 ms doubling to 60 s per key, 10 qps / 100 burst overall
    return MaxOfRateLimiter(ItemExponentialFailureRateLimiter(0.005, 60.0), BucketRateLimiter(10.0, 100))


class NamespaceController(Controller):
    """Empties terminating namespaces and releases their `kubernetes` finalizer."""

    name = "namespace"
    workers = 5  # upstream --concurrent-namespace-syncs defaults to 10

    def __init__(
        self,
        client: Client,
        informers: Optional[InformerFactory] = None,
        *,
        workers: Optional[int] = None,
        rate_limiter: Optional[RateLimiter] = None,
        content_watch_timeout: int = 300,
    ) -> None:
        self.content_watch_timeout = content_watch_timeout
        # namespace -> (group, version, resource) -> watch task over what remains there
        self._content_watches: dict[str, dict[tuple[str, str, str], asyncio.Task[None]]] = {}
        self._watch_tasks: set[asyncio.Task[None]] = set()  # every live one, cancelled or not
        # resources whose deletecollection answered 405/404 despite discovery: don't ask again
        self._no_deletecollection: set[tuple[str, str, str]] = set()
        super().__init__(client, informers, workers=workers, rate_limiter=rate_limiter or _default_rate_limiter())

    def setup(self) -> None:
        self.namespaces_api = self.client.resource("", "v1", "namespaces", namespaced=False)
        self.namespaces = self.watch("", "v1", "namespaces", enqueue=self._key_if_deleting)

    @staticmethod
    def _key_if_deleting(ns: Obj) -> Optional[str]:
        meta = ns.get("metadata") or {}
        return meta.get("name") if meta.get("deletionTimestamp") else None

    # ------------------------------------------------------------------ reconcile
    async def reconcile(self, key: str) -> None:
        # several actors edit a terminating namespace: start from the live object
        try:
            ns = await self.namespaces_api.get(key)
        except NotFound:
            self._stop_content_watches(key)
            return
        if not ns["metadata"].get("deletionTimestamp"):
            self._stop_content_watches(key)
            return
        ns = await self._ensure_terminating(ns)
        if ns is None:
            self._stop_content_watches(key)
            return
        if FINALIZER not in ((ns.get("spec") or {}).get("finalizers") or []):
            self._stop_content_watches(key)
            return  # our part is done; other finalizers (or the server) finish it
        ns, estimate = await self._delete_all_content(ns)
        if estimate > 0:
            # upstream waits half the estimate; the content watches usually wake us sooner
            raise Requeue(after=estimate / 2 + 1, reason=(
                f"some content remains in the namespace, estimate {estimate} seconds before it is removed"))
        self._stop_content_watches(key)
        await self._finalize(ns)

    async def _ensure_terminating(self, ns: Obj) -> Optional[Obj]:
        """Phase Terminating in status (the server normally sets it with the deletion)."""
        for _ in range(5):
            if (ns.get("status") or {}).get("phase") == "Terminating":
                return ns
            new = copy.deepcopy(ns)
            new.setdefault("status", {})["phase"] = "Terminating"
            try:
                return await self.namespaces_api.update_status(new)
            except NotFound:
                return None
            except Conflict:
                ns = await self._refetch(ns)
                if ns is None:
                    return None
        raise Requeue(reason="namespace kept changing")

    async def _refetch(self, ns: Obj) -> Optional[Obj]:
        """The namespace again, or None when it is gone or was replaced (another uid)."""
        try:
            fresh = await self.namespaces_api.get(ns["metadata"]["name"])
        except NotFound:
            return None
        if fresh["metadata"].get("uid") != ns["metadata"].get("uid"):
            return None
        return fresh

    async def _finalize(self, ns: Obj) -> None:
        """Remove our finalizer via PUT .../namespaces/<name>/finalize (retrying conflicts)."""
        name = ns["metadata"]["name"]
        for _ in range(10):
            current = (ns.get("spec") or {}).get("finalizers") or []
            if FINALIZER not in current:
                return
            body = copy.deepcopy(ns)
            body.setdefault("spec", {})["finalizers"] = sorted({f for f in current if f != FINALIZER})
            try:
                await self.namespaces_api.update(body, subresource="finalize")
                self.log.info("namespace %s: content removed, finalizer %r released", name, FINALIZER)
                return
            except NotFound:
                return
            except Conflict:
                fresh = await self._refetch(ns)
                if fresh is None:
                    return
                ns = fresh
        raise Requeue(reason="finalize kept conflicting")

    # ------------------------------------------------------------------ content
    async def _discover(self) -> tuple[list[APIResource], Optional[str]]:
        """Namespaced resources that can be listed and deleted, and a discovery error
        message (deletion goes on with what was found; finalizing waits)."""
        err: Optional[str] = None
        try:
            resources = await self.client.server_resources(preferred_only=True)
        except DiscoveryError as e:
            resources = e.resources
            err = f"Discovery failed for some groups, {len(e.failed)} failing: {e}"
        except (APIStatusError, TransportError) as e:
            resources, err = [], _err_text(e)
        usable = [r for r in resources if r.namespaced and {"list", "delete"} <= r.verbs]
        return usable, err

    async def _delete_all_content(self, ns: Obj) -> tuple[Obj, int]:
        """Delete everything in the namespace once; report in status conditions.
        Returns the (possibly updated) namespace and a wait estimate in seconds
        (0: empty).  Raises ContentDeletionError when something failed."""
        name = ns["metadata"]["name"]
        resources, discovery_error = await self._discover()
        totals = _Totals()
        sem = asyncio.Semaphore(8)

        async def one(r: APIResource) -> None:
            async with sem:
                await self._delete_resource_content(name, r, totals)

        await asyncio.gather(*(one(r) for r in resources))

        failures = build_conditions(discovery_error, totals)
        status = copy.deepcopy(ns.get("status") or {})
        if update_conditions(status, failures):
            try:
                ns = await self.namespaces_api.update_status({**ns, "status": status})
            except NotFound:
                return ns, 0  # someone finished it already; _finalize sees NotFound too
            except APIStatusError as e:
                # conditions are informational; the next pass writes them again
                self.log.warning("namespace %s: could not update status conditions: %s", name, e)

        problems = list(totals.errors)
        if discovery_error is not None:
            problems.insert(0, discovery_error)
        if problems:
            if totals.remaining:
                self._watch_content(name, totals)
            raise ContentDeletionError(f"namespace {name}: " + "; ".join(problems))
        if totals.remaining:
            self._watch_content(name, totals)
        return ns, totals.estimate

    async def _delete_resource_content(self, namespace: str, r: APIResource, totals: _Totals) -> None:
        """Delete one resource's objects in the namespace and count what remains."""
        handle = r.handle(self.client)
        gvr = r.gvr
        try:
            if "deletecollection" in r.verbs and gvr not in self._no_deletecollection:
                try:
                    # Background: the namespace is going anyway; nothing should be orphaned
                    await handle.delete_collection(namespace, propagation_policy="Background")
                except (MethodNotAllowed, NotFound):
                    self._no_deletecollection.add(gvr)
                    await self._delete_each(handle, namespace)
            else:
                await self._delete_each(handle, namespace)
            remaining = await handle.list(namespace)
        except APIStatusError as e:
            totals.errors.append(_err_text(e))
            return
        except TransportError as e:
            totals.errors.append(str(e))
            return
        items = remaining.get("items") or []
        if not items:
            return
        totals.remaining[r] = len(items)
        totals.list_rv[r] = (remaining.get("metadata") or {}).get("resourceVersion") or ""
        estimate = 0
        for item in items:
            for f in (item.get("metadata") or {}).get("finalizers") or []:
                totals.finalizers[f] = totals.finalizers.get(f, 0) + 1
            if r.group == "" and r.resource == "pods":
                estimate = max(estimate, _pod_grace(item))
        if not estimate and any((i.get("metadata") or {}).get("finalizers") for i in items):
            estimate = FINALIZER_ESTIMATE_SECONDS
        if estimate:
            totals.estimate = max(totals.estimate, estimate)
        else:
            # nothing explains why they are still there
            totals.errors.append(f"unexpected items still remain in namespace: {namespace} for gvr: {_gvr_string(r)}")

    async def _delete_each(self, handle: Any, namespace: str) -> None:
        listed = await handle.list(namespace)
        for item in listed.get("items") or []:
            meta = item.get("metadata") or {}
            if meta.get("deletionTimestamp"):
                continue
            try:
                await handle.delete(meta["name"], namespace, propagation_policy="Background",
                                    preconditions={"uid": meta["uid"]} if meta.get("uid") else None)
            except (NotFound, Conflict):
                pass  # gone, or replaced: the check afterwards counts what is left

    # ------------------------------------------------------------------ content watches
    def _watch_content(self, namespace: str, totals: _Totals) -> None:
        """Watch each resource that still has objects here; any change re-queues."""
        watches = self._content_watches.setdefault(namespace, {})
        for r, _ in totals.remaining.items():
            task = watches.get(r.gvr)
            if task is not None and not task.done():
                continue
            task = asyncio.get_running_loop().create_task(
                self._content_watch(namespace, r, totals.list_rv.get(r, "")),
                name=f"namespace {namespace} content watch {r.resource}.{r.group}")
            watches[r.gvr] = task
            self._watch_tasks.add(task)
            task.add_done_callback(self._watch_tasks.discard)

    async def _content_watch(self, namespace: str, r: APIResource, rv: str) -> None:
        handle = r.handle(self.client)
        try:
            while True:
                async with handle.watch(namespace, resource_version=rv or None, allow_watch_bookmarks=True,
                                        timeout_seconds=self.content_watch_timeout) as stream:
                    async for etype, obj in stream:
                        rv = (obj.get("metadata") or {}).get("resourceVersion") or rv
                        if etype != "BOOKMARK":
                            self.queue.add(namespace)
        except asyncio.CancelledError:
            raise
        except (Gone, APIStatusError, TransportError) as e:
            # the next pass lists afresh and restarts the watch
            self.log.debug("namespace %s: content watch on %s ended: %s", namespace, r.resource, e)
            self.queue.add(namespace)

    def _stop_content_watches(self, namespace: str) -> None:
        for task in (self._content_watches.pop(namespace, None) or {}).values():
            task.cancel()

    async def on_stop(self) -> None:
        # includes watches already cancelled but not yet finished: their streams close here
        tasks = list(self._watch_tasks)
        self._content_watches.clear()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _pod_grace(pod: Obj) -> int:
    """Seconds a pod may still take to terminate (0 for finished pods)."""
    if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
        return 0
    meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
    grace = meta.get("deletionGracePeriodSeconds")
    if grace is None:
        grace = spec.get("terminationGracePeriodSeconds", 30)
    return int(grace or 0)
