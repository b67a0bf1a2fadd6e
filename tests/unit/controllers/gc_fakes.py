"""An in-memory cluster for the garbage collector's unit tests.

FakeCluster plays both sides the collector talks to: it implements the collector's
Access (get, delete, patches, finalizers, events) with the API server's deletion
semantics (orphan/foregroundDeletion finalizers from the propagation policy,
preconditions), and it feeds every change to the collector's graph the way the
metadata informers would.  Objects can be kept `hidden` from the informers to play
owners that exist but have not been observed yet.
"""

from __future__ import annotations

import copy
import itertools
from typing import Any, Iterable, Optional

from kybernetes.client.discovery import APIResource
from kybernetes.client.errors import Conflict, NotFound
from kybernetes.client.workqueue import ShutDown
from kybernetes.controllers.base import Requeue
from kybernetes.controllers.garbagecollector import (
    ADD,
    DELETE,
    UPDATE,
    GarbageCollector,
    NamespacedOwnerOfClusterScopedObject,
    ObjectRef,
    RESTMappingError,
    split_api_version,
)

Obj = dict[str, Any]

# apiVersion, kind -> (resource, namespaced)
KINDS: dict[tuple[str, str], tuple[str, bool]] = {
    ("v1", "ConfigMap"): ("configmaps", True),
    ("v1", "Secret"): ("secrets", True),
    ("v1", "Pod"): ("pods", True),
    ("v1", "Namespace"): ("namespaces", False),
    ("v1", "Node"): ("nodes", False),
    ("apps/v1", "Deployment"): ("deployments", True),
    ("apps/v1", "ReplicaSet"): ("replicasets", True),
    ("rbac.authorization.k8s.io/v1", "ClusterRole"): ("clusterroles", False),
}

ORPHAN, FOREGROUND = "orphan", "foregroundDeletion"


def api_resource(api_version: str, kind: str) -> APIResource:
    resource, namespaced = KINDS[(api_version, kind)]
    group, version = split_api_version(api_version)
    return APIResource(group, version, resource, kind, namespaced,
                       frozenset({"create", "delete", "get", "list", "patch", "update", "watch"}))


def status(code: int, reason: str, message: str = "") -> dict:
    return {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": reason, "code": code,
            "message": message or reason}


def not_found(ref: Any) -> NotFound:
    return NotFound(status(404, "NotFound", f"{ref} not found"), 404)


def conflict(message: str) -> Conflict:
    return Conflict(status(409, "Conflict", message), 409)


def owner_ref(obj: Obj, *, block: Optional[bool] = None, controller: Optional[bool] = None, **override: Any) -> Obj:
    m = obj["metadata"]
    ref = {"apiVersion": obj["apiVersion"], "kind": obj["kind"], "name": m["name"], "uid": m["uid"]}
    if controller is not None:
        ref["controller"] = controller
    if block is not None:
        ref["blockOwnerDeletion"] = block
    ref.update(override)
    return ref


class FakeCluster:
    def __init__(self) -> None:
        self.objects: dict[str, Obj] = {}  # uid -> object
        self.hidden: set[str] = set()
        self.calls: list[tuple[Any, ...]] = []
        self.events: list[tuple[ObjectRef, str, str, str]] = []
        self.fail_next: dict[str, list[Exception]] = {}
        self.gc: Optional[GarbageCollector] = None
        self._rv = itertools.count(100)
        self._uids = itertools.count(1)

    def attach(self, gc: GarbageCollector) -> None:
        self.gc = gc

    # ------------------------------------------------------------------ informer side
    def _emit(self, etype: str, obj: Obj, old: Optional[Obj] = None) -> None:
        uid = obj["metadata"]["uid"]
        if self.gc is None or uid in self.hidden:
            return
        self.gc.graph.process(etype, copy.deepcopy(obj["metadata"]), api_version=obj["apiVersion"], kind=obj["kind"],
                              old_meta=copy.deepcopy(old["metadata"]) if old is not None else None)

    def show(self, uid: str) -> None:
        """The informer delivers an object it had not shown yet."""
        self.hidden.discard(uid)
        if uid in self.objects:
            self._emit(ADD, self.objects[uid])

    # ------------------------------------------------------------------ test helpers
    def create(self, name: str, *, kind: str = "ConfigMap", api_version: str = "v1", namespace: Optional[str] = "default",
               owners: Iterable[Obj] = (), finalizers: Iterable[str] = (), uid: Optional[str] = None,
               hidden: bool = False) -> Obj:
        _, namespaced = KINDS[(api_version, kind)]
        meta: Obj = {"name": name, "uid": uid or f"uid-{name}-{next(self._uids)}", "resourceVersion": str(next(self._rv))}
        if namespaced:
            meta["namespace"] = namespace or "default"
        if owners:
            meta["ownerReferences"] = [dict(o) for o in owners]
        if finalizers:
            meta["finalizers"] = list(finalizers)
        obj = {"apiVersion": api_version, "kind": kind, "metadata": meta}
        self.objects[meta["uid"]] = obj
        if hidden:
            self.hidden.add(meta["uid"])
        self._emit(ADD, obj)
        return obj

    def get_obj(self, uid: str) -> Optional[Obj]:
        return self.objects.get(uid)

    def exists(self, obj: Obj) -> bool:
        return obj["metadata"]["uid"] in self.objects

    def meta(self, obj: Obj) -> Obj:
        return self.objects[obj["metadata"]["uid"]]["metadata"]

    def user_delete(self, obj: Obj, policy: Optional[str] = None) -> None:
        """A user's DELETE (what the API server does with the propagation policy)."""
        self._server_delete(self.objects[obj["metadata"]["uid"]], policy)

    def user_update(self, obj: Obj, **meta_changes: Any) -> None:
        cur = self.objects[obj["metadata"]["uid"]]
        old = copy.deepcopy(cur)
        for k, v in meta_changes.items():
            if v is None:
                cur["metadata"].pop(k, None)
            else:
                cur["metadata"][k] = v
        self._write(cur, old)

    # ------------------------------------------------------------------ server semantics
    def _write(self, cur: Obj, old: Obj) -> None:
        cur["metadata"]["resourceVersion"] = str(next(self._rv))
        m = cur["metadata"]
        if m.get("deletionTimestamp") and not m.get("finalizers"):
            del self.objects[m["uid"]]
            self._emit(DELETE, cur)
        else:
            self._emit(UPDATE, cur, old)

    def _server_delete(self, cur: Obj, policy: Optional[str]) -> None:
        m = cur["metadata"]
        old = copy.deepcopy(cur)
        fins = list(m.get("finalizers") or [])
        if policy in ("Orphan", "Foreground", "Background"):
            orphan, fg = policy == "Orphan", policy == "Foreground"
        else:
            first = next((f for f in fins if f in (ORPHAN, FOREGROUND)), None)
            orphan, fg = first == ORPHAN, first == FOREGROUND
        wanted = [f for f in fins if f not in (ORPHAN, FOREGROUND)] + ([ORPHAN] if orphan else []) + ([FOREGROUND] if fg else [])
        if m.get("deletionTimestamp"):
            if set(wanted) == set(fins):
                return
        if wanted:
            m["finalizers"] = wanted
            m.setdefault("deletionTimestamp", "2024-01-01T00:00:00Z")
            m["deletionGracePeriodSeconds"] = 0
            self._write(cur, old)
        else:
            m.pop("finalizers", None)
            del self.objects[m["uid"]]
            self._emit(DELETE, cur)

    def _find(self, ref: ObjectRef) -> Obj:
        group, _ = split_api_version(ref.api_version)
        _, namespaced = KINDS[(ref.api_version, ref.kind)]
        for obj in self.objects.values():
            m = obj["metadata"]
            if (split_api_version(obj["apiVersion"])[0] == group and obj["kind"] == ref.kind and m["name"] == ref.name
                    and (m.get("namespace") or "") == (ref.namespace if namespaced else "")):
                return obj
        raise not_found(ref)

    def _check_fail(self, op: str) -> None:
        queue = self.fail_next.get(op)
        if queue:
            raise queue.pop(0)

    # ------------------------------------------------------------------ Access
    def resource_for(self, api_version: str, kind: str) -> APIResource:
        if (api_version, kind) not in KINDS:
            raise RESTMappingError(api_version, kind)
        return api_resource(api_version, kind)

    def _address(self, ref: ObjectRef) -> None:
        r = self.resource_for(ref.api_version, ref.kind)
        if r.namespaced and not ref.namespace:
            raise NamespacedOwnerOfClusterScopedObject()

    async def get(self, ref: ObjectRef) -> Obj:
        self.calls.append(("get", ref))
        self._address(ref)
        self._check_fail("get")
        obj = self._find(ref)
        return {"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata", "metadata": copy.deepcopy(obj["metadata"])}

    async def delete(self, ref: ObjectRef, resource_version: str, owners: Optional[list[Obj]], policy: str) -> None:
        self.calls.append(("delete", ref, policy))
        self._address(ref)
        self._check_fail("delete")
        obj = self._find(ref)
        if obj["metadata"]["uid"] != ref.uid:
            raise conflict("Precondition failed: UID")
        self._server_delete(obj, policy)

    async def remove_owner_references(self, ref: ObjectRef, owner_uids: list[str]) -> None:
        self.calls.append(("remove_owner_references", ref, tuple(owner_uids)))
        self._address(ref)
        self._check_fail("remove_owner_references")
        obj = self._find(ref)
        if obj["metadata"]["uid"] != ref.uid:
            raise conflict("Precondition failed: UID")
        old = copy.deepcopy(obj)
        kept = [o for o in obj["metadata"].get("ownerReferences") or [] if o.get("uid") not in owner_uids]
        if kept:
            obj["metadata"]["ownerReferences"] = kept
        else:
            obj["metadata"].pop("ownerReferences", None)
        self._write(obj, old)

    async def unblock_owner_references(self, ref: ObjectRef, owners: list[Obj]) -> None:
        self.calls.append(("unblock_owner_references", ref))
        self._address(ref)
        obj = self._find(ref)
        if obj["metadata"]["uid"] != ref.uid:
            raise conflict("Precondition failed: UID")
        old = copy.deepcopy(obj)
        obj["metadata"]["ownerReferences"] = [{**o, "blockOwnerDeletion": False} if o.get("blockOwnerDeletion") else o
                                              for o in obj["metadata"].get("ownerReferences") or []]
        self._write(obj, old)

    async def remove_finalizer(self, ref: ObjectRef, finalizer: str) -> None:
        self.calls.append(("remove_finalizer", ref, finalizer))
        self._address(ref)
        self._check_fail("remove_finalizer")
        try:
            obj = self._find(ref)
        except NotFound:
            return
        if obj["metadata"]["uid"] != ref.uid or finalizer not in (obj["metadata"].get("finalizers") or []):
            return
        old = copy.deepcopy(obj)
        kept = [f for f in obj["metadata"]["finalizers"] if f != finalizer]
        if kept:
            obj["metadata"]["finalizers"] = kept
        else:
            del obj["metadata"]["finalizers"]
        self._write(obj, old)

    async def record_event(self, involved: ObjectRef, event_type: str, reason: str, message: str) -> None:
        self.events.append((involved, event_type, reason, message))

    def ops(self, name: str) -> list[tuple[Any, ...]]:
        return [c for c in self.calls if c[0] == name]


class NeverRateLimiter:
    """Rate-limited re-adds wait (practically) for ever, so tests see them as delayed."""

    def __init__(self) -> None:
        self.requeues: dict[Any, int] = {}

    def when(self, key: Any) -> float:
        self.requeues[key] = self.requeues.get(key, 0) + 1
        return 10_000.0

    def forget(self, key: Any) -> None:
        self.requeues.pop(key, None)

    def num_requeues(self, key: Any) -> int:
        return self.requeues.get(key, 0)


async def drain(gc: GarbageCollector, limit: int = 1000) -> list[tuple[str, BaseException]]:
    """Run the collector's queue until nothing is ready (delayed re-adds stay delayed),
    the way its workers do.  Returns the (key, error) pairs of failed reconciles."""
    errors: list[tuple[str, BaseException]] = []
    for _ in range(limit):
        if not len(gc.queue):
            return errors
        try:
            key = await gc.queue.get()
        except ShutDown:
            return errors
        try:
            await gc.reconcile(key)
        except Requeue:
            gc.queue.add_rate_limited(key)
        except Exception as e:  # noqa: BLE001 - recorded for the test to look at
            errors.append((key, e))
            gc.queue.add_rate_limited(key)
        else:
            gc.queue.forget(key)
        finally:
            gc.queue.done(key)
    raise AssertionError(f"queue did not drain in {limit} steps")


def delayed(gc: GarbageCollector) -> set[str]:
    """Keys waiting for a rate-limited re-add."""
    return set(gc.queue._delayed)  # noqa: SLF001 - test introspection


def fire_delayed(gc: GarbageCollector) -> None:
    """Make every delayed key ready now."""
    for key, (_, handle) in list(gc.queue._delayed.items()):  # noqa: SLF001
        handle.cancel()
        gc.queue._delayed.pop(key, None)  # noqa: SLF001
        gc.queue.add(key)
