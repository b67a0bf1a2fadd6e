"""The garbage collector (upstream pkg/controller/garbagecollector).

Objects name their owners in metadata.ownerReferences.  The collector keeps a
dependency graph of every object the server holds and deletes dependents whose owners
are gone, following the owner's deletion policy:

* Background (the default): once an owner has disappeared, each dependent whose every
  owner is verified absent is deleted (uid and resourceVersion preconditions); a
  dependent that still has a live owner only loses the references to absent owners.
* Orphan: an owner being deleted with the `orphan` finalizer has its reference removed
  from all its dependents, then the finalizer removed (the server then deletes it).
* Foreground: an owner being deleted with the `foregroundDeletion` finalizer has its
  dependents deleted (in the foreground themselves when they have dependents of their
  own); once no dependent with `blockOwnerDeletion: true` remains, the finalizer goes.

Monitors: one metadata-only informer (PartialObjectMetadata lists and watches) per
served resource supporting delete, list and watch (Events excepted, as upstream),
from discovery.  Discovery is redone when CustomResourceDefinitions or APIServices
change, when an owner reference names a kind discovery did not know, and (optionally,
`resync_period`) on a timer.

The graph (GraphBuilder) is a node per uid with its owners and dependents; it changes
only on informer events and on *virtual delete events*.  An owner that no monitor has
shown yet is a *virtual* node: the collector verifies it with a live GET and, when the
owner does not exist (404, or its name now holds another uid), emits a virtual delete
event, which removes the node and sends its dependents to be collected.  Owners verified
absent are remembered (an LRU of 500, as upstream) so the dependents' checks are cheap.

References are validated as upstream: a namespaced dependent's owner must be in the
dependent's namespace or cluster-scoped (otherwise the owner counts as absent, and an
OwnerRefInvalidNamespace warning Event is recorded when the owner was observed in
another namespace); a cluster-scoped dependent naming a namespaced kind is never
collected through that reference.

Work goes through the controller's rate-limited queue, keyed per uid: `delete:<uid>`
(upstream's attemptToDelete) and `orphan:<uid>` (attemptToOrphan); failures retry with
per-key exponential backoff.  Discovery has its own small queue so that it can never
wait behind collection work.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
from dataclasses import dataclass, replace
from typing import Any, Callable, Hashable, Iterable, Mapping, Optional, Protocol

from kybernetes.client.discovery import APIResource, DiscoveryError
from kybernetes.client.errors import APIStatusError, ClientError, Conflict, NotFound
from kybernetes.client.events import EventRecorder
from kybernetes.client.informer import Informer
from kybernetes.client.rest import Client, ResourceHandle
from kybernetes.client.workqueue import ItemExponentialFailureRateLimiter, RateLimiter, ShutDown, WorkQueue
from kybernetes.controllers.base import Controller, InformerFactory, ReconcileError, Requeue

__all__ = [
    "GarbageCollector",
    "GraphBuilder",
    "Node",
    "ObjectRef",
    "ReferenceCache",
    "RESTMapper",
    "RESTMappingError",
    "NamespacedOwnerOfClusterScopedObject",
    "ClusterAccess",
    "MetadataResourceHandle",
    "FINALIZER_ORPHAN",
    "FINALIZER_FOREGROUND",
    "IGNORED_RESOURCES",
    "deletable_resources",
    "partition_dependents",
    "alternate_owner_identity",
    "references_diffs",
]

log = logging.getLogger("kybernetes.controllers.garbagecollector")

Obj = dict[str, Any]

FINALIZER_ORPHAN = "orphan"
FINALIZER_FOREGROUND = "foregroundDeletion"

METADATA_ACCEPT = "application/json;as=PartialObjectMetadata;v=v1;g=meta.k8s.io,application/json"
METADATA_LIST_ACCEPT = "application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io,application/json"

# upstream DefaultIgnoredResources: events are never owners worth tracking
IGNORED_RESOURCES: frozenset[tuple[str, str]] = frozenset({("", "events"), ("events.k8s.io", "events")})
# a change to these may change what discovery reports
REDISCOVERY_TRIGGERS: frozenset[tuple[str, str]] = frozenset({
    ("apiextensions.k8s.io", "customresourcedefinitions"),
    ("apiregistration.k8s.io", "apiservices"),
})
EVENT_SOURCE = "garbage-collector-controller"

ADD, UPDATE, DELETE = "add", "update", "delete"


# ---------------------------------------------------------------------- references
@dataclass(frozen=True)
class ObjectRef:
    """An object's coordinates (upstream objectReference: owner-reference coordinates
    plus a namespace)."""

    api_version: str
    kind: str
    name: str
    uid: str
    namespace: str = ""

    def __str__(self) -> str:
        return f"[{self.api_version}/{self.kind}, namespace: {self.namespace}, name: {self.name}, uid: {self.uid}]"

    @classmethod
    def from_owner(cls, ref: Mapping[str, Any], namespace: str = "") -> "ObjectRef":
        return cls(ref.get("apiVersion") or "", ref.get("kind") or "", ref.get("name") or "",
                   ref.get("uid") or "", namespace)

    @classmethod
    def from_meta(cls, api_version: str, kind: str, meta: Mapping[str, Any]) -> "ObjectRef":
        return cls(api_version, kind, meta.get("name") or "", meta.get("uid") or "", meta.get("namespace") or "")


def _matches_coordinates(ref: Mapping[str, Any], ident: ObjectRef) -> bool:
    """Whether an owner reference names exactly `ident` (uid, name, kind, apiVersion)."""
    return (ref.get("uid") == ident.uid and ref.get("name") == ident.name and ref.get("kind") == ident.kind
            and ref.get("apiVersion") == ident.api_version)


def _blocks(ref: Mapping[str, Any]) -> bool:
    return ref.get("blockOwnerDeletion") is True


def _being_deleted(meta: Optional[Mapping[str, Any]]) -> bool:
    return bool(meta and meta.get("deletionTimestamp"))


def _has_finalizer(meta: Optional[Mapping[str, Any]], finalizer: str) -> bool:
    return bool(meta) and finalizer in (meta.get("finalizers") or ())  # type: ignore[union-attr]


def _deletion_starts_with(old: Optional[Obj], new: Obj, finalizer: str) -> bool:
    """The object is (now) being deleted with `finalizer`, and was not before."""
    if not (_being_deleted(new) and _has_finalizer(new, finalizer)):
        return False
    if old is None:
        return True
    return not (_being_deleted(old) and _has_finalizer(old, finalizer))


def split_api_version(api_version: str) -> tuple[str, str]:
    group, sep, version = api_version.rpartition("/")
    return (group, version) if sep else ("", api_version)


# ---------------------------------------------------------------------- the graph
class Node:
    """One object (or, while `virtual`, an owner known only from references).

    `dependents` are the nodes naming this one's uid in their ownerReferences; `owners`
    is the object's ownerReferences as last observed."""

    __slots__ = ("identity", "owners", "dependents", "virtual", "being_deleted", "deleting_dependents")

    def __init__(self, identity: ObjectRef, owners: Iterable[Obj] = (), *, virtual: bool = False,
                 being_deleted: bool = False, deleting_dependents: bool = False) -> None:
        self.identity = identity
        self.owners: list[Obj] = list(owners)
        self.dependents: set[Node] = set()
        self.virtual = virtual
        self.being_deleted = being_deleted
        self.deleting_dependents = deleting_dependents

    def clone(self) -> "Node":
        c = Node(self.identity, self.owners, virtual=self.virtual, being_deleted=self.being_deleted,
                 deleting_dependents=self.deleting_dependents)
        c.dependents = set(self.dependents)
        return c

    def blocking_dependents(self) -> list["Node"]:
        """Dependents whose reference to this node has blockOwnerDeletion: true."""
        uid = self.identity.uid
        return [d for d in self.dependents if any(o.get("uid") == uid and _blocks(o) for o in d.owners)]

    def __repr__(self) -> str:
        flags = [f for f, on in (("virtual", self.virtual), ("beingDeleted", self.being_deleted),
                                 ("deletingDependents", self.deleting_dependents)) if on]
        return f"Node({self.identity}{' ' + ','.join(flags) if flags else ''}, {len(self.dependents)} dependents)"


class ReferenceCache:
    """A small LRU set of ObjectRefs (upstream's absentOwnerCache)."""

    def __init__(self, max_size: int = 500) -> None:
        self.max_size = max_size
        self._items: collections.OrderedDict[Hashable, None] = collections.OrderedDict()

    def add(self, ref: Hashable) -> None:
        self._items[ref] = None
        self._items.move_to_end(ref)
        while len(self._items) > self.max_size:
            self._items.popitem(last=False)

    def has(self, ref: Hashable) -> bool:
        if ref in self._items:
            self._items.move_to_end(ref)
            return True
        return False

    def __len__(self) -> int:
        return len(self._items)


def references_diffs(old: list[Obj], new: list[Obj]) -> tuple[list[Obj], list[Obj], list[tuple[Obj, Obj]]]:
    """(added, removed, changed) owner references between two lists, matched by uid."""
    old_by_uid = {o.get("uid"): o for o in old}
    added: list[Obj] = []
    changed: list[tuple[Obj, Obj]] = []
    for ref in new:
        uid = ref.get("uid")
        if uid in old_by_uid:
            prev = old_by_uid.pop(uid)
            if prev != ref:
                changed.append((prev, ref))
        else:
            added.append(ref)
    return added, list(old_by_uid.values()), changed


def partition_dependents(dependents: Iterable[Node], owner: ObjectRef) -> tuple[list[Node], list[Node]]:
    """Dependents whose reference to owner.uid matches `owner`'s coordinates, and those
    whose reference disagrees (wrong apiVersion/kind/name, or a namespaced owner in
    another namespace).  A dependent with several references to the uid may be in both."""
    matching: list[Node] = []
    nonmatching: list[Node] = []
    for dep in dependents:
        found_match = found_mismatch = False
        if owner.namespace and owner.namespace != dep.identity.namespace:
            found_mismatch = True
        else:
            for ref in dep.owners:
                if ref.get("uid") == owner.uid:
                    if _matches_coordinates(ref, owner):
                        found_match = True
                    else:
                        found_mismatch = True
        if found_match:
            matching.append(dep)
        if found_mismatch:
            nonmatching.append(dep)
    return matching, nonmatching


def _ref_order(r: ObjectRef) -> tuple[str, str, str, str, str]:
    # kind and apiVersion before namespace, so kinds order alike whatever their scope
    return (r.kind, r.api_version, r.namespace, r.name, r.uid)


def alternate_owner_identity(dependents: Iterable[Node], absent: ObjectRef) -> Optional[ObjectRef]:
    """Another identity the dependents give absent.uid: the first (in reference order)
    following `absent`, else the first; None when there is none."""
    absent_cluster_scoped = not absent.namespace
    seen = {absent}
    first: Optional[ObjectRef] = None
    first_following: Optional[ObjectRef] = None
    for dep in dependents:
        for ref in dep.owners:
            if ref.get("uid") != absent.uid:
                continue
            if _matches_coordinates(ref, absent) and (absent_cluster_scoped or absent.namespace == dep.identity.namespace):
                continue
            alt = ObjectRef.from_owner(ref, dep.identity.namespace)
            if absent_cluster_scoped and alt.api_version == absent.api_version and alt.kind == absent.kind:
                alt = replace(alt, namespace="")  # this apiVersion/kind is known to be cluster-scoped
            if alt in seen:
                continue
            seen.add(alt)
            if first is None or _ref_order(alt) < _ref_order(first):
                first = alt
            if _ref_order(absent) < _ref_order(alt) and (first_following is None or _ref_order(alt) < _ref_order(first_following)):
                first_following = alt
    return first_following or first


class GraphBuilder:
    """The dependency graph and its event processing (upstream GraphBuilder.
    processGraphChanges).  Synchronous: it runs inside informer callbacks and workers,
    never across an await, so every event is applied atomically.

    It sends work out through callbacks: attempt_to_delete(uid, rate_limited),
    attempt_to_orphan(uid), report_invalid_namespace(dependent, owner_ref)."""

    def __init__(
        self,
        attempt_to_delete: Callable[[str, bool], None],
        attempt_to_orphan: Callable[[str], None],
        report_invalid_namespace: Optional[Callable[[Node, Obj], None]] = None,
        absent_owner_cache: Optional[ReferenceCache] = None,
    ) -> None:
        self.uid_to_node: dict[str, Node] = {}
        self.absent_owner_cache = absent_owner_cache if absent_owner_cache is not None else ReferenceCache()
        self._delete = attempt_to_delete
        self._orphan = attempt_to_orphan
        self._report = report_invalid_namespace

    def node(self, uid: str) -> Optional[Node]:
        return self.uid_to_node.get(uid)

    def __len__(self) -> int:
        return len(self.uid_to_node)

    def _attempt_to_delete(self, n: Node, *, rate_limited: bool = False) -> None:
        self._delete(n.identity.uid, rate_limited)

    def _report_invalid_namespace(self, n: Node, owner_uid: str) -> None:
        ref = next((o for o in n.owners if o.get("uid") == owner_uid), None)
        if ref is not None and self._report is not None:
            self._report(n, ref)

    # ------------------------------------------------------------------ events
    def process(self, event_type: str, meta: Obj, *, api_version: str, kind: str,
                old_meta: Optional[Obj] = None, virtual: bool = False) -> None:
        """Apply one add/update/delete of the object whose metadata is `meta` (a
        resource of `api_version`/`kind`); `virtual` for the collector's own deletes."""
        uid = meta.get("uid")
        if not uid:
            return
        existing = self.uid_to_node.get(uid)
        if existing is not None and not virtual and existing.virtual:
            # first sight of an owner known until now only from references
            observed = ObjectRef.from_meta(api_version, kind, meta)
            if observed != existing.identity:
                _, invalid = partition_dependents(existing.dependents, observed)
                for dep in invalid:
                    if observed.namespace and dep.identity.namespace != observed.namespace:
                        log.info("item %s references an owner %s but does not match namespaces", dep.identity, observed)
                        self._report_invalid_namespace(dep, observed.uid)
                    self._attempt_to_delete(dep)  # a no-op if its owners are solid
                log.debug("replacing virtual item %s with observed item %s", existing.identity, observed)
                existing = existing.clone()
                existing.identity = observed
                self.uid_to_node[uid] = existing
            existing.virtual = False

        if event_type in (ADD, UPDATE):
            owners = [o for o in meta.get("ownerReferences") or [] if isinstance(o, dict)]
            if existing is None:
                deleting = _being_deleted(meta)
                n = Node(ObjectRef.from_meta(api_version, kind, meta), owners, being_deleted=deleting,
                         deleting_dependents=deleting and _has_finalizer(meta, FINALIZER_FOREGROUND))
                self.uid_to_node[uid] = n
                self._add_dependent_to_owners(n, n.owners)
                # a creation and a deletion may reach us as one event
                self._process_transitions(old_meta, meta, n)
                return
            added, removed, changed = references_diffs(existing.owners, owners)
            if added or removed or changed:
                self._add_unblocked_owners_to_delete_queue(removed, changed)
                existing.owners = owners
                self._add_dependent_to_owners(existing, added)
                self._remove_dependent_from_owners(existing, removed)
            if _being_deleted(meta):
                existing.being_deleted = True
            self._process_transitions(old_meta, meta, existing)
            return

        if event_type != DELETE or existing is None:
            return
        remove = True
        if virtual:
            deleted = ObjectRef.from_meta(api_version, kind, meta)
            if existing.virtual:
                # unsure of its coordinates: do dependents name this uid differently?
                matching, nonmatching = partition_dependents(existing.dependents, deleted)
                if nonmatching:
                    remove = False
                    if matching:
                        self.absent_owner_cache.add(deleted)
                        for dep in matching:
                            self._attempt_to_delete(dep)
                    if existing.identity == deleted:
                        alt = alternate_owner_identity(nonmatching, deleted)
                        if alt is not None:
                            # check the next identity the dependents give this uid
                            replacement = existing.clone()
                            replacement.identity = alt
                            self.uid_to_node[uid] = replacement
                            self._attempt_to_delete(replacement, rate_limited=True)
            elif existing.identity != deleted:
                # an observed object is not removed on a virtual event for other coordinates
                remove = False
                matching, _ = partition_dependents(existing.dependents, deleted)
                if matching:
                    self.absent_owner_cache.add(deleted)
                    for dep in matching:
                        self._attempt_to_delete(dep)
        if not remove:
            return
        self._remove_node(existing)
        if existing.dependents:
            self.absent_owner_cache.add(ObjectRef.from_meta(api_version, kind, meta))
        for dep in existing.dependents:
            self._attempt_to_delete(dep)
        for ref in existing.owners:
            owner = self.uid_to_node.get(ref.get("uid") or "")
            if owner is not None and owner.deleting_dependents:
                # it may have been waiting for this object only
                self._attempt_to_delete(owner)

    # ------------------------------------------------------------------ structure
    def _add_dependent_to_owners(self, n: Node, owners: Iterable[Obj]) -> None:
        """Link n under each owner, creating virtual owners (to be verified) for uids not
        in the graph; n itself is verified when a reference looks invalid."""
        potentially_invalid = False
        for ref in owners:
            ouid = ref.get("uid")
            if not ouid:
                continue
            owner = self.uid_to_node.get(ouid)
            if owner is None:
                owner = Node(ObjectRef.from_owner(ref, n.identity.namespace), virtual=True)
                self.uid_to_node[ouid] = owner
                owner.dependents.add(n)
                # the collector checks it exists and emits a virtual delete if not
                self._attempt_to_delete(owner)
                continue
            owner.dependents.add(n)
            if potentially_invalid:
                continue
            owner_namespaced = bool(owner.identity.namespace)
            if owner_namespaced and owner.identity.namespace != n.identity.namespace:
                if not owner.virtual:
                    # a namespaced owner seen in another namespace: definitely wrong
                    log.info("item %s references an owner %s but does not match namespaces", n.identity, owner.identity)
                    self._report_invalid_namespace(n, ouid)
                potentially_invalid = True
            elif not _matches_coordinates(ref, owner.identity):
                if not owner.virtual:
                    log.info("item %s references an owner with coordinates that do not match the observed identity %s",
                             n.identity, owner.identity)
                potentially_invalid = True
            elif not owner_namespaced and n.identity.namespace and owner.virtual:
                # a virtual cluster-scoped owner of a namespaced child may be a missing
                # namespaced object referenced from elsewhere: verify the child's references
                potentially_invalid = True
        if potentially_invalid:
            self._attempt_to_delete(n)

    def _remove_dependent_from_owners(self, n: Node, owners: Iterable[Obj]) -> None:
        for ref in owners:
            owner = self.uid_to_node.get(ref.get("uid") or "")
            if owner is not None:
                owner.dependents.discard(n)

    def _remove_node(self, n: Node) -> None:
        self.uid_to_node.pop(n.identity.uid, None)
        self._remove_dependent_from_owners(n, n.owners)

    def _add_unblocked_owners_to_delete_queue(self, removed: list[Obj], changed: list[tuple[Obj, Obj]]) -> None:
        """Owners waiting for their dependents look again when a blocking reference goes."""
        for ref in removed:
            if _blocks(ref):
                owner = self.uid_to_node.get(ref.get("uid") or "")
                if owner is not None:
                    self._attempt_to_delete(owner)
        for old, new in changed:
            if _blocks(old) and not _blocks(new):
                owner = self.uid_to_node.get(new.get("uid") or "")
                if owner is not None:
                    self._attempt_to_delete(owner)

    def _process_transitions(self, old: Optional[Obj], new: Obj, n: Node) -> None:
        if _deletion_starts_with(old, new, FINALIZER_ORPHAN):
            self._orphan(n.identity.uid)
            return
        if _deletion_starts_with(old, new, FINALIZER_FOREGROUND):
            n.deleting_dependents = True  # a node added virtually lacks it
            for dep in n.dependents:
                self._attempt_to_delete(dep)
            self._attempt_to_delete(n)


# ---------------------------------------------------------------------- the API side
class RESTMappingError(ReconcileError):
    """An owner reference's apiVersion/kind is not (yet) served."""

    def __init__(self, api_version: str, kind: str) -> None:
        super().__init__(f"unable to get REST mapping for {kind}/{api_version}.")
        self.api_version = api_version
        self.kind = kind


class NamespacedOwnerOfClusterScopedObject(ReconcileError):
    """A cluster-scoped object names a namespaced kind as its owner: never resolvable."""

    def __init__(self) -> None:
        super().__init__("cluster-scoped objects cannot refer to namespaced owners")


class RESTMapper:
    """apiVersion + kind -> served resource, from discovery (every served version)."""

    def __init__(self) -> None:
        self._by_gvk: dict[tuple[str, str, str], APIResource] = {}

    def reset(self, resources: Iterable[APIResource], keep_group_versions: Iterable[str] = ()) -> None:
        """Replace the mappings; those of `keep_group_versions` (which discovery failed
        to report this time) are kept from before."""
        keep = set(keep_group_versions)
        fresh: dict[tuple[str, str, str], APIResource] = {k: r for k, r in self._by_gvk.items()
                                                           if r.group_version in keep}
        for r in resources:
            if not r.kind or "/" in r.resource:
                continue
            key = (r.group, r.version, r.kind)
            prev = fresh.get(key)
            if prev is None or ("get" in r.verbs and "get" not in prev.verbs):
                fresh[key] = r
        self._by_gvk = fresh

    def resource_for(self, api_version: str, kind: str) -> APIResource:
        group, version = split_api_version(api_version)
        r = self._by_gvk.get((group, version, kind))
        if r is None:
            raise RESTMappingError(api_version, kind)
        return r

    def __len__(self) -> int:
        return len(self._by_gvk)


class MetadataResourceHandle(ResourceHandle):
    """A resource handle whose reads answer PartialObjectMetadata (and lists/watches
    PartialObjectMetadataList / PartialObjectMetadata events): what client-go's
    metadata client does, so caches hold metadata only."""

    accept = METADATA_ACCEPT
    list_accept = METADATA_LIST_ACCEPT


class Access(Protocol):
    """What the collector asks of the API server (ClusterAccess; a fake in unit tests)."""

    def resource_for(self, api_version: str, kind: str) -> APIResource: ...

    async def get(self, ref: ObjectRef) -> Obj: ...

    async def delete(self, ref: ObjectRef, resource_version: str, owners: Optional[list[Obj]],
                     policy: str) -> None: ...

    async def remove_owner_references(self, ref: ObjectRef, owner_uids: list[str]) -> None: ...

    async def unblock_owner_references(self, ref: ObjectRef, owners: list[Obj]) -> None: ...

    async def remove_finalizer(self, ref: ObjectRef, finalizer: str) -> None: ...

    async def record_event(self, involved: ObjectRef, event_type: str, reason: str, message: str) -> None: ...


class ClusterAccess:
    """The collector's reads and writes through kybernetes.client (metadata only).

    Every call resolves apiVersion/kind through the RESTMapper; a namespaced kind
    addressed without a namespace (a cluster-scoped dependent's owner) raises
    NamespacedOwnerOfClusterScopedObject."""

    def __init__(self, client: Client, mapper: RESTMapper, *, conflict_retries: int = 5,
                 recorder: Optional[EventRecorder] = None) -> None:
        self.client = client
        self.mapper = mapper
        self.conflict_retries = conflict_retries
        self.recorder = recorder  # the collector sets its own once built

    def resource_for(self, api_version: str, kind: str) -> APIResource:
        return self.mapper.resource_for(api_version, kind)

    def _address(self, ref: ObjectRef) -> tuple[MetadataResourceHandle, Optional[str]]:
        r = self.mapper.resource_for(ref.api_version, ref.kind)
        if r.namespaced and not ref.namespace:
            raise NamespacedOwnerOfClusterScopedObject()
        handle = MetadataResourceHandle(self.client, r.group, r.version, r.resource, namespaced=r.namespaced)
        return handle, (ref.namespace if r.namespaced else None)

    async def get(self, ref: ObjectRef) -> Obj:
        handle, ns = self._address(ref)
        return await handle.get(ref.name, ns)

    async def delete(self, ref: ObjectRef, resource_version: str, owners: Optional[list[Obj]], policy: str) -> None:
        """Delete with uid (and resourceVersion) preconditions.  When only the
        resourceVersion moved and the owner references are unchanged, delete again
        with the uid precondition alone (upstream deleteObject)."""
        handle, ns = self._address(ref)
        pre = {"uid": ref.uid}
        if resource_version:
            pre["resourceVersion"] = resource_version
        try:
            await handle.delete(ref.name, ns, propagation_policy=policy, preconditions=pre)
            return
        except Conflict:
            if not resource_version:
                raise
            live = await handle.get(ref.name, ns)  # NotFound propagates: it is gone
            lm = live.get("metadata") or {}
            if (lm.get("uid") == ref.uid and lm.get("resourceVersion") != resource_version
                    and (lm.get("ownerReferences") or []) == (owners or [])):
                await handle.delete(ref.name, ns, propagation_policy=policy, preconditions={"uid": ref.uid})
                return
            raise

    async def _patch(self, ref: ObjectRef, strategic: Obj, merge: Callable[[Obj], Obj]) -> None:
        """A strategic merge patch; where the resource does not take one (415: custom
        resources), a JSON merge patch built from the live object by `merge(meta)`."""
        handle, ns = self._address(ref)
        try:
            await handle.patch(ref.name, strategic, "strategic", ns)
            return
        except APIStatusError as e:
            if e.code != 415:
                raise
        live = await handle.get(ref.name, ns)
        meta = live.get("metadata") or {}
        if meta.get("uid") != ref.uid:
            raise NotFound({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound",
                            "code": 404, "message": f"{ref} no longer exists"}, 404)
        await handle.patch(ref.name, merge(meta), "merge", ns)

    async def remove_owner_references(self, ref: ObjectRef, owner_uids: list[str]) -> None:
        """Drop the references to `owner_uids` from ref's ownerReferences (the patch
        carries ref.uid, so it fails with 409 if the name now holds another object)."""
        drop = set(owner_uids)
        strategic = {"metadata": {"ownerReferences": [{"$patch": "delete", "uid": u} for u in owner_uids],
                                  "uid": ref.uid}}

        def merge(meta: Obj) -> Obj:
            kept = [o for o in meta.get("ownerReferences") or [] if o.get("uid") not in drop]
            return {"metadata": {"uid": ref.uid, "resourceVersion": meta.get("resourceVersion"),
                                 "ownerReferences": kept or None}}

        await self._patch(ref, strategic, merge)

    async def unblock_owner_references(self, ref: ObjectRef, owners: list[Obj]) -> None:
        """Set blockOwnerDeletion false on ref's blocking references (cycle breaking)."""
        blocking = [{**o, "blockOwnerDeletion": False} for o in owners if _blocks(o)]
        strategic = {"metadata": {"ownerReferences": blocking, "uid": ref.uid}}

        def merge(meta: Obj) -> Obj:
            return {"metadata": {"uid": ref.uid, "resourceVersion": meta.get("resourceVersion"),
                                 "ownerReferences": [{**o, "blockOwnerDeletion": False} for o in owners] or None}}

        await self._patch(ref, strategic, merge)

    async def remove_finalizer(self, ref: ObjectRef, finalizer: str) -> None:
        """Remove `finalizer` from the object (a merge patch conditional on the
        resourceVersion, retried on conflicts); nothing to do once it is gone."""
        handle, ns = self._address(ref)
        for _ in range(self.conflict_retries):
            try:
                live = await handle.get(ref.name, ns)
            except NotFound:
                return
            meta = live.get("metadata") or {}
            if meta.get("uid") != ref.uid:
                return  # another object holds the name now
            finalizers = list(meta.get("finalizers") or [])
            if finalizer not in finalizers:
                return
            kept = [f for f in finalizers if f != finalizer]
            try:
                await handle.patch(ref.name, {"metadata": {"resourceVersion": meta.get("resourceVersion"),
                                                           "finalizers": kept or None}}, "merge", ns)
                return
            except NotFound:
                return
            except Conflict:
                continue
        raise ReconcileError(f"updateMaxRetries({self.conflict_retries}) has reached. "
                             f"The garbage collector will retry later for owner {ref}")

    async def record_event(self, involved: ObjectRef, event_type: str, reason: str, message: str) -> None:
        """An Event about `involved` through the collector's recorder (events.k8s.io/v1;
        cluster-scoped objects' go to "default")."""
        if self.recorder is None:
            return
        ref = {"apiVersion": involved.api_version, "kind": involved.kind, "name": involved.name, "uid": involved.uid,
               "namespace": involved.namespace}
        self.recorder.event(ref, event_type, reason, message, action="GarbageCollect")


# ---------------------------------------------------------------------- discovery
def deletable_resources(resources: Iterable[APIResource],
                        ignored: Iterable[tuple[str, str]] = IGNORED_RESOURCES) -> dict[tuple[str, str, str], APIResource]:
    """The resources to monitor: per (group, resource), its preferred version, when it
    supports delete, list and watch and is not ignored."""
    skip = set(ignored)
    chosen: dict[tuple[str, str], APIResource] = {}
    for r in sorted(resources, key=lambda r: not r.preferred):  # stable: preferred versions first
        key = (r.group, r.resource)
        if key in chosen or key in skip or not r.kind or "/" in r.resource:
            continue
        chosen[key] = r
    return {r.gvr: r for r in chosen.values() if {"delete", "list", "watch"} <= r.verbs}


@dataclass
class _Monitor:
    resource: APIResource
    informer: Informer


class _VirtualDeleteEnqueued(Exception):
    """attempt_to_delete_item found the object absent and told the graph."""


def _meta(obj: Obj) -> Obj:
    return obj.get("metadata") or {}


def _key_uid(key: str) -> tuple[str, str]:
    kind, _, uid = key.partition(":")
    return kind, uid


# ---------------------------------------------------------------------- the controller
class GarbageCollector(Controller):
    """Deletes dependents whose owners are gone, and carries out Orphan and Foreground
    deletion (see the module docstring)."""

    name = "garbagecollector"
    event_source = EVENT_SOURCE
    workers = 20  # upstream --concurrent-gc-syncs

    def __init__(
        self,
        client: Client,
        informers: Optional[InformerFactory] = None,
        *,
        workers: Optional[int] = None,
        rate_limiter: Optional[RateLimiter] = None,
        access: Optional[Access] = None,
        ignored_resources: Iterable[tuple[str, str]] = IGNORED_RESOURCES,
        initial_sync_timeout: float = 30.0,
        resync_period: float = 0.0,
        rediscovery_delay: float = 0.5,
        min_rediscovery_interval: float = 5.0,
        orphan_concurrency: int = 20,
    ) -> None:
        self.mapper = RESTMapper()
        self.access: Access = access if access is not None else ClusterAccess(client, self.mapper)
        self.ignored_resources = frozenset(ignored_resources)
        self.initial_sync_timeout = initial_sync_timeout
        self.resync_period = resync_period
        self.rediscovery_delay = rediscovery_delay
        self.min_rediscovery_interval = min_rediscovery_interval
        self.orphan_concurrency = orphan_concurrency
        self.graph = GraphBuilder(self._enqueue_delete, self._enqueue_orphan, self._report_invalid_namespace)
        self.sync_queue: WorkQueue[str] = WorkQueue(ItemExponentialFailureRateLimiter(0.5, 60.0),
                                                     name="garbagecollector-discovery")
        self._monitors: dict[tuple[str, str, str], _Monitor] = {}
        self._monitors_started = False
        self._last_sync = float("-inf")
        self._first_sync = asyncio.Event()
        self._running = asyncio.Event()
        self._sync_task: Optional[asyncio.Task[None]] = None
        self._starter: Optional[asyncio.Task[None]] = None
        self._side_tasks: set[asyncio.Task[None]] = set()
        self._reported: ReferenceCache = ReferenceCache(1000)  # (dependent, owner) pairs already reported
        super().__init__(client, informers, workers=workers, rate_limiter=rate_limiter)
        if isinstance(self.access, ClusterAccess) and self.access.recorder is None:
            self.access.recorder = self.recorder

    # ------------------------------------------------------------------ queue keys
    def _enqueue_delete(self, uid: str, rate_limited: bool = False) -> None:
        key = f"delete:{uid}"
        if rate_limited:
            self.queue.add_rate_limited(key)
        else:
            self.queue.add(key)

    def _enqueue_orphan(self, uid: str) -> None:
        self.queue.add(f"orphan:{uid}")

    # ------------------------------------------------------------------ lifecycle
    async def start(self, *, sync_timeout: Optional[float] = None) -> None:
        """Discover and start the monitors; the workers start once the monitors have
        synced (or `initial_sync_timeout` passed, as upstream proceeds anyway).  Returns
        at once: `wait_running()` waits for the workers."""
        if self._sync_task is not None:
            return
        loop = asyncio.get_running_loop()
        self._monitors_started = True
        for m in self._monitors.values():
            m.informer.start()
        self._sync_task = loop.create_task(self._sync_worker(), name=f"{self.name} discovery")
        self.sync_queue.add("resources")
        timeout = sync_timeout if sync_timeout is not None else self.initial_sync_timeout
        self._starter = loop.create_task(self._start_when_synced(timeout), name=f"{self.name} start")

    async def _start_when_synced(self, timeout: float) -> None:
        try:
            async with asyncio.timeout(timeout):
                await self._first_sync.wait()
                await asyncio.gather(*(m.informer.wait_synced() for m in list(self._monitors.values())))
            self.log.info("all resource monitors have synced (%d resources, %d objects)",
                          len(self._monitors), len(self.graph))
        except TimeoutError:
            self.log.warning("not all resource monitors could be synced in %.0fs, proceeding anyway", timeout)
        await Controller.start(self)
        self._running.set()

    async def wait_running(self, timeout: Optional[float] = None) -> bool:
        """Wait until the workers run (the initial sync is over); False on timeout."""
        try:
            async with asyncio.timeout(timeout):
                await self._running.wait()
        except TimeoutError:
            return False
        return True

    async def stop(self) -> None:
        for t in (self._starter, self._sync_task):
            if t is not None:
                t.cancel()
        self.sync_queue.shutdown()
        await asyncio.gather(*(t for t in (self._starter, self._sync_task) if t is not None), return_exceptions=True)
        self._starter = self._sync_task = None
        await super().stop()

    async def on_stop(self) -> None:
        monitors = list(self._monitors.values())
        self._monitors_started = False
        await asyncio.gather(*(m.informer.stop() for m in monitors), return_exceptions=True)
        tasks = list(self._side_tasks)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # ------------------------------------------------------------------ discovery
    def request_rediscovery(self, *, delay: Optional[float] = None) -> None:
        """Discover again soon (bursts coalesce; at most every min_rediscovery_interval
        unless `delay` says otherwise)."""
        if delay is None:
            loop_now = asyncio.get_running_loop().time()
            delay = max(self.rediscovery_delay, self._last_sync + self.min_rediscovery_interval - loop_now)
        self.sync_queue.add_after("resources", delay)

    async def _sync_worker(self) -> None:
        while True:
            try:
                key = await self.sync_queue.get()
            except ShutDown:
                return
            try:
                await self.sync_resources()
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001 - discovery failures are retried with backoff
                if isinstance(e, ClientError | ReconcileError):
                    self.log.warning("resource discovery failed (retry %d): %s", self.sync_queue.num_requeues(key) + 1, e)
                else:
                    self.log.exception("resource discovery failed")
                self.sync_queue.add_rate_limited(key)
            else:
                self.sync_queue.forget(key)
                if self.resync_period > 0:
                    self.sync_queue.add_after(key, self.resync_period)
            finally:
                self.sync_queue.done(key)

    async def sync_resources(self) -> None:
        """Discover the served resources; start monitors for new deletable ones and stop
        those of resources no longer served.  Monitors of group versions that failed
        discovery are kept.  Raises (to retry) when discovery was partial."""
        failed: dict[str, BaseException] = {}
        try:
            resources = await self.client.server_resources()
        except DiscoveryError as e:
            resources, failed = e.resources, e.failed
        if not resources:
            raise ReconcileError("no resources reported by discovery")
        self._last_sync = asyncio.get_running_loop().time()
        self.mapper.reset(resources, keep_group_versions=failed)
        wanted = deletable_resources(resources, self.ignored_resources)
        for gvr, m in self._monitors.items():
            if gvr not in wanted and m.resource.group_version in failed:
                wanted[gvr] = m.resource
        removed = [gvr for gvr in self._monitors if gvr not in wanted]
        added = [r for gvr, r in wanted.items() if gvr not in self._monitors]
        for gvr in removed:
            await self._monitors.pop(gvr).informer.stop()
        for r in added:
            self._monitors[r.gvr] = self._monitor(r)
        if added or removed:
            self.log.info("monitoring %d resources (added %s; removed %s)", len(self._monitors),
                          sorted(f"{r.resource}.{r.group or 'core'}/{r.version}" for r in added) or "none",
                          sorted(f"{g[2]}.{g[0] or 'core'}/{g[1]}" for g in removed) or "none")
        self._first_sync.set()
        if failed:
            raise ReconcileError("failed to discover some groups: " + ", ".join(sorted(failed)))

    def _monitor(self, r: APIResource) -> _Monitor:
        handle = MetadataResourceHandle(self.client, r.group, r.version, r.resource, namespaced=r.namespaced)
        inf = Informer(handle, name=f"gc {r.group or 'core'}/{r.version}/{r.resource}")
        api_version, kind = r.group_version, r.kind
        graph = self.graph

        def on_add(obj: Obj) -> None:
            graph.process(ADD, _meta(obj), api_version=api_version, kind=kind)

        def on_update(old: Obj, new: Obj) -> None:
            graph.process(UPDATE, _meta(new), api_version=api_version, kind=kind, old_meta=_meta(old))

        def on_delete(obj: Obj) -> None:
            graph.process(DELETE, _meta(obj), api_version=api_version, kind=kind)

        inf.add_handlers(on_add, on_update, on_delete)
        if (r.group, r.resource) in REDISCOVERY_TRIGGERS:
            def changed(*_: Obj) -> None:
                if inf.has_synced:  # not for the initial list
                    self.request_rediscovery(delay=self.rediscovery_delay)

            inf.add_handlers(changed, changed, changed)
        if self._monitors_started:
            inf.start()
        return _Monitor(r, inf)

    @property
    def monitored(self) -> list[tuple[str, str, str]]:
        return sorted(self._monitors)

    def graph_has_uid(self, uid: str) -> bool:
        """For tests (upstream GraphHasUID)."""
        return uid in self.graph.uid_to_node

    # ------------------------------------------------------------------ events
    def _report_invalid_namespace(self, n: Node, owner_ref: Obj) -> None:
        invalid = ObjectRef.from_owner(owner_ref, n.identity.namespace)
        pair = (n.identity.uid, invalid)
        if self._reported.has(pair):
            return
        self._reported.add(pair)
        message = f"ownerRef {invalid} does not exist in namespace {json.dumps(n.identity.namespace)}"
        self._spawn(self._record_event(n.identity, "Warning", "OwnerRefInvalidNamespace", message))

    async def _record_event(self, involved: ObjectRef, event_type: str, reason: str, message: str) -> None:
        try:
            await self.access.record_event(involved, event_type, reason, message)
        except (ClientError, ReconcileError) as e:
            self.log.warning("could not record event %s about %s: %s", reason, involved, e)

    def _spawn(self, coro: Any) -> None:
        try:
            task = asyncio.get_running_loop().create_task(coro)
        except RuntimeError:
            coro.close()
            return
        self._side_tasks.add(task)
        task.add_done_callback(self._side_tasks.discard)

    # ------------------------------------------------------------------ reconcile
    async def reconcile(self, key: str) -> None:
        kind, uid = _key_uid(key)
        if kind == "delete":
            await self._attempt_to_delete_worker(uid)
        elif kind == "orphan":
            await self._attempt_to_orphan_worker(uid)
        else:
            self.log.warning("unknown work item %r", key)

    async def _attempt_to_delete_worker(self, uid: str) -> None:
        n = self.graph.node(uid)
        if n is None:
            return  # removed from the graph meanwhile
        try:
            await self.attempt_to_delete_item(n)
        except _VirtualDeleteEnqueued:
            return
        except NamespacedOwnerOfClusterScopedObject:
            # will not resolve on retry
            self.log.info("item %s: cluster-scoped objects cannot refer to namespaced owners", n.identity)
            return
        except RESTMappingError:
            self.request_rediscovery()
            raise
        current = self.graph.node(uid)
        if current is not None and current.virtual:
            # not observed by an informer yet: look again later (upstream issue 56121)
            raise Requeue(reason=f"item {current.identity} has not been observed via informer yet")

    def _virtual_delete(self, ref: ObjectRef) -> None:
        self.graph.process(DELETE, {"name": ref.name, "namespace": ref.namespace, "uid": ref.uid},
                           api_version=ref.api_version, kind=ref.kind, virtual=True)
        raise _VirtualDeleteEnqueued()

    async def attempt_to_delete_item(self, item: Node) -> None:
        """Look the object up; delete it when every owner is verified absent, or strip
        references to absent owners when some owner lives (upstream attemptToDeleteItem)."""
        if item.being_deleted and not item.deleting_dependents:
            return  # a one-way trip: its dependents are looked at once it is gone
        try:
            latest = await self.access.get(item.identity)
        except NotFound:
            self._virtual_delete(item.identity)
        lmeta = _meta(latest)
        if lmeta.get("uid") != item.identity.uid:
            self._virtual_delete(item.identity)

        if item.deleting_dependents:
            await self._process_deleting_dependents(item)
            return

        owner_refs = [o for o in lmeta.get("ownerReferences") or [] if isinstance(o, dict)]
        if not owner_refs:
            return
        solid, dangling, waiting = await self.classify_references(item, owner_refs)
        self.log.debug("item %s: solid %s, dangling %s, waitingForDependentsDeletion %s", item.identity,
                       [o.get("uid") for o in solid], [o.get("uid") for o in dangling], [o.get("uid") for o in waiting])
        if solid:
            if not dangling and not waiting:
                return
            # references to owners waiting for their dependents go too, else those
            # owners would wait for this object for ever
            uids = [o["uid"] for o in dangling + waiting]
            self.log.info("item %s has a live owner; removing dangling/waiting references %s", item.identity, uids)
            try:
                await self.access.remove_owner_references(item.identity, uids)
            except NotFound:
                pass  # gone: the informer will tell
            return
        if waiting and item.dependents:
            if any(dep.deleting_dependents for dep in list(item.dependents)):
                # a possible cycle: stop blocking our owners first, then go in the foreground
                self.log.info("item %s: an owner and a dependent both delete dependents; unblocking its owner "
                              "references before deleting it in the foreground", item.identity)
                await self.access.unblock_owner_references(item.identity, item.owners)
            policy = "Foreground"
        elif _has_finalizer(lmeta, FINALIZER_ORPHAN):
            policy = "Orphan"  # honour what the object already asks for
        elif _has_finalizer(lmeta, FINALIZER_FOREGROUND):
            policy = "Foreground"
        else:
            policy = "Background"
        self.log.info("deleting %s (propagationPolicy %s)", item.identity, policy)
        try:
            await self.access.delete(item.identity, lmeta.get("resourceVersion") or "", owner_refs, policy)
        except NotFound:
            self._virtual_delete(item.identity)

    async def classify_references(self, item: Node, refs: list[Obj]) -> tuple[list[Obj], list[Obj], list[Obj]]:
        """(solid, dangling, waitingForDependentsDeletion) owner references."""
        solid: list[Obj] = []
        dangling: list[Obj] = []
        waiting: list[Obj] = []
        for ref in refs:
            absent, owner = await self.is_dangling(ref, item)
            if absent:
                dangling.append(ref)
            elif _being_deleted(_meta(owner or {})) and _has_finalizer(_meta(owner or {}), FINALIZER_FOREGROUND):
                waiting.append(ref)
            else:
                solid.append(ref)
        return solid, dangling, waiting

    async def is_dangling(self, ref: Obj, item: Node) -> tuple[bool, Optional[Obj]]:
        """Whether the owner a reference names is absent, checked against the absent
        owner cache, else with a live GET (404, or a different uid: absent)."""
        cluster_key = ObjectRef.from_owner(ref)
        if self.graph.absent_owner_cache.has(cluster_key):
            return True, None
        ns_key = replace(cluster_key, namespace=item.identity.namespace)
        if self.graph.absent_owner_cache.has(ns_key):
            return True, None
        resource = self.access.resource_for(cluster_key.api_version, cluster_key.kind)
        key = ns_key if resource.namespaced else cluster_key
        if resource.namespaced and not item.identity.namespace:
            raise NamespacedOwnerOfClusterScopedObject()
        try:
            owner = await self.access.get(key)
        except NotFound:
            self.graph.absent_owner_cache.add(key)
            return True, None
        if _meta(owner).get("uid") != cluster_key.uid:
            self.graph.absent_owner_cache.add(key)
            return True, None
        return False, owner

    async def _process_deleting_dependents(self, item: Node) -> None:
        """An owner in foreground deletion: release it once no blocking dependent is
        left, else make sure each blocking dependent is being deleted."""
        blocking = item.blocking_dependents()
        if not blocking:
            self.log.info("removing the %s finalizer from %s", FINALIZER_FOREGROUND, item.identity)
            await self.access.remove_finalizer(item.identity, FINALIZER_FOREGROUND)
            return
        for dep in blocking:
            if not dep.deleting_dependents:
                self._enqueue_delete(dep.identity.uid)

    async def _attempt_to_orphan_worker(self, uid: str) -> None:
        """Remove the owner's reference from all its dependents, then its `orphan`
        finalizer (upstream attemptToOrphanWorker)."""
        owner = self.graph.node(uid)
        if owner is None:
            return
        dependents = list(owner.dependents)
        sem = asyncio.Semaphore(self.orphan_concurrency)
        errors: list[str] = []

        async def orphan(dep: Node) -> None:
            async with sem:
                try:
                    await self.access.remove_owner_references(dep.identity, [owner.identity.uid])
                except NotFound:
                    pass
                except (ClientError, ReconcileError) as e:
                    errors.append(f"orphaning {dep.identity} failed, {e}")

        await asyncio.gather(*(orphan(d) for d in dependents))
        if errors:
            raise ReconcileError(f"failed to orphan dependents of owner {owner.identity}, got errors: "
                                 + "; ".join(errors))
        self.log.info("orphaned %d dependents of %s; removing its %s finalizer", len(dependents), owner.identity,
                      FINALIZER_ORPHAN)
        await self.access.remove_finalizer(owner.identity, FINALIZER_ORPHAN)
