"""The Node authorizer (upstream plugin/pkg/auth/authorizer/node).

Kubelets authenticate as ``system:node:<name>`` in group ``system:nodes``.  For the
resources whose access depends on what runs on the node, the authorizer consults a
graph of relationships:

    node <- pod                      (spec.nodeName)
    node <- pod <- secret            (volumes incl. projected, env, envFrom, imagePullSecrets, volume secretRefs)
    node <- pod <- configmap         (volumes incl. projected, env, envFrom)
    node <- pod <- pvc               (persistentVolumeClaim volumes, generic ephemeral volumes)
    node <- pod <- pvc <- pv         (pv.spec.claimRef)
    node <- pod <- pvc <- pv <- secret
    node <- pod <- serviceaccount    (spec.serviceAccountName; TokenRequest only)
    node <- volumeattachment         (spec.nodeName)

Everything else a node asks for is checked against the static ``node_rules()`` (allowed or
no opinion), as upstream does.  Decisions are never DENY: another authorizer (RBAC) may
still allow what the Node authorizer does not.

The graph follows the pods, persistentvolumes and volumeattachments watch caches.  Before
a graph decision the authorizer waits (briefly) until the graph reflects every write the
store has committed, so a secret becomes readable the moment a pod that references it is
bound to the node and stops being readable the moment that pod is deleted.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from typing import Any, Iterable, Iterator, Mapping, Optional

from kybernetes.api.storagehelpers import pod_claim_names
from kybernetes.auth.authorizer import Attributes, Decision, RulesResult

log = logging.getLogger("kybernetes.auth.node")

__all__ = [
    "NODES_GROUP",
    "NODE_USER_PREFIX",
    "NODE_LEASE_NAMESPACE",
    "MIRROR_POD_ANNOTATION",
    "node_identity",
    "pod_secret_names",
    "pod_configmap_names",
    "pod_pvc_names",
    "pv_secret_refs",
    "Graph",
    "NodeAuthorizer",
    "GraphPopulator",
    "start_node_authorizer",
]

NODES_GROUP = "system:nodes"
NODE_USER_PREFIX = "system:node:"
NODE_LEASE_NAMESPACE = "kube-node-lease"
MIRROR_POD_ANNOTATION = "kubernetes.io/config.mirror"

Obj = Mapping[str, Any]


def node_identity(user: Any) -> tuple[str, bool]:
    """(node name, is a node) as upstream's nodeidentifier: a user is a node when in the
    system:nodes group and named system:node:<name>; the name may then still be empty."""
    if user is None:
        return "", False
    name = getattr(user, "name", "") or ""
    if not name.startswith(NODE_USER_PREFIX):
        return "", False
    if NODES_GROUP not in (getattr(user, "groups", ()) or ()):
        return "", False
    return name[len(NODE_USER_PREFIX):], True


# ---------------------------------------------------------------------------
# what a pod references (upstream podutil.VisitPodSecretNames / VisitPodConfigmapNames)


def _containers(spec: Obj) -> Iterator[Obj]:
    for k in ("initContainers", "containers", "ephemeralContainers"):
        for c in spec.get(k) or ():
            if isinstance(c, Mapping):
                yield c


def _secret_ref_name(ref: Any) -> str:
    return (ref.get("name") or "") if isinstance(ref, Mapping) else ""


def pod_secret_names(pod: Obj) -> set[str]:
    spec = pod.get("spec") or {}
    out: set[str] = set()
    for ref in spec.get("imagePullSecrets") or ():
        out.add(_secret_ref_name(ref))
    for c in _containers(spec):
        for ef in c.get("envFrom") or ():
            out.add(_secret_ref_name(ef.get("secretRef")))
        for e in c.get("env") or ():
            vf = e.get("valueFrom") or {}
            out.add(_secret_ref_name(vf.get("secretKeyRef")))
    for v in spec.get("volumes") or ():
        if not isinstance(v, Mapping):
            continue
        if isinstance(v.get("secret"), Mapping):
            out.add(v["secret"].get("secretName") or "")
        proj = v.get("projected")
        if isinstance(proj, Mapping):
            for src in proj.get("sources") or ():
                out.add(_secret_ref_name((src or {}).get("secret")))
        for kind in ("azureFile",):
            if isinstance(v.get(kind), Mapping):
                out.add(v[kind].get("secretName") or "")
        for kind in ("cephfs", "cinder", "flexVolume", "rbd", "iscsi", "scaleIO", "storageos", "csi"):
            src = v.get(kind)
            if isinstance(src, Mapping):
                out.add(_secret_ref_name(src.get("secretRef")))
                if kind == "iscsi":  # no other refs in use
                    pass
                if kind == "csi":
                    out.add(_secret_ref_name(src.get("nodePublishSecretRef")))
    out.discard("")
    return out


def pod_configmap_names(pod: Obj) -> set[str]:
    spec = pod.get("spec") or {}
    out: set[str] = set()
    for c in _containers(spec):
        for ef in c.get("envFrom") or ():
            out.add(_secret_ref_name(ef.get("configMapRef")))
        for e in c.get("env") or ():
            vf = e.get("valueFrom") or {}
            out.add(_secret_ref_name(vf.get("configMapKeyRef")))
    for v in spec.get("volumes") or ():
        if not isinstance(v, Mapping):
            continue
        out.add(_secret_ref_name(v.get("configMap")))
        proj = v.get("projected")
        if isinstance(proj, Mapping):
            for src in proj.get("sources") or ():
                out.add(_secret_ref_name((src or {}).get("configMap")))
    out.discard("")
    return out


def pod_pvc_names(pod: Obj) -> set[str]:
    """The claims a pod's volumes use: persistentVolumeClaim and generic ephemeral ones."""
    return set(pod_claim_names(pod))


def pv_secret_refs(pv: Obj) -> set[tuple[str, str]]:
    """(namespace, name) of the secrets a PersistentVolume's source references."""
    spec = pv.get("spec") or {}
    out: set[tuple[str, str]] = set()
    claim_ns = ((spec.get("claimRef") or {}).get("namespace")) or ""

    def add(ref: Any, default_ns: str = "") -> None:
        if isinstance(ref, Mapping) and ref.get("name"):
            out.add((ref.get("namespace") or default_ns, ref["name"]))

    for kind, src in spec.items():
        if not isinstance(src, Mapping):
            continue
        if kind == "azureFile" and src.get("secretName"):
            out.add((src.get("secretNamespace") or "default", src["secretName"]))
        elif kind == "csi":
            for f in ("controllerPublishSecretRef", "nodeStageSecretRef", "nodePublishSecretRef",
                      "controllerExpandSecretRef", "nodeExpandSecretRef"):
                add(src.get(f))
        elif kind in ("cephfs", "cinder", "flexVolume", "rbd", "iscsi", "scaleIO", "storageos"):
            add(src.get("secretRef"), claim_ns if kind in ("flexVolume",) else "default")
    return out


# ---------------------------------------------------------------------------
# the graph


class Graph:
    """Who references what, indexed for node queries.  Plain, synchronous, no I/O: the
    populator feeds it; the authorizer asks it."""

    def __init__(self) -> None:
        # pod (ns, name) -> (node, refs) where refs are (type, ns, name)
        self._pods: dict[tuple[str, str], tuple[str, frozenset]] = {}
        # node -> how many of its pods reference each (type, ns, name)
        self._reach: dict[str, Counter] = {}
        # pv name -> (claim (ns, name) or None, secret refs)
        self._pvs: dict[str, tuple[Optional[tuple[str, str]], frozenset]] = {}
        # volume attachment name -> node
        self._vas: dict[str, str] = {}

    # ----- pods
    def set_pod(self, pod: Obj) -> None:
        meta = pod.get("metadata") or {}
        key = (meta.get("namespace") or "", meta.get("name") or "")
        node = (pod.get("spec") or {}).get("nodeName") or ""
        if not node:  # unscheduled pods grant nothing
            self.delete_pod(*key)
            return
        ns = key[0]
        refs: set[tuple[str, str, str]] = {("pods", ns, key[1])}
        sa = (pod.get("spec") or {}).get("serviceAccountName") or ""
        if sa:
            refs.add(("serviceaccounts", ns, sa))
        refs |= {("secrets", ns, n) for n in pod_secret_names(pod)}
        refs |= {("configmaps", ns, n) for n in pod_configmap_names(pod)}
        refs |= {("persistentvolumeclaims", ns, n) for n in pod_pvc_names(pod)}
        frozen = frozenset(refs)
        if self._pods.get(key) == (node, frozen):
            return
        self.delete_pod(*key)
        self._pods[key] = (node, frozen)
        self._reach.setdefault(node, Counter()).update(frozen)

    def delete_pod(self, namespace: str, name: str) -> None:
        old = self._pods.pop((namespace, name), None)
        if old is None:
            return
        node, refs = old
        c = self._reach.get(node)
        if c is not None:
            c.subtract(refs)
            for r in refs:
                if c[r] <= 0:
                    del c[r]
            if not c:
                del self._reach[node]

    # ----- persistent volumes, volume attachments
    def set_pv(self, pv: Obj) -> None:
        spec = pv.get("spec") or {}
        ref = spec.get("claimRef") or {}
        claim = (ref.get("namespace") or "", ref["name"]) if ref.get("name") else None
        self._pvs[(pv.get("metadata") or {}).get("name") or ""] = (claim, frozenset(pv_secret_refs(pv)))

    def delete_pv(self, name: str) -> None:
        self._pvs.pop(name, None)

    def set_volume_attachment(self, va: Obj) -> None:
        name = (va.get("metadata") or {}).get("name") or ""
        node = (va.get("spec") or {}).get("nodeName") or ""
        if node:
            self._vas[name] = node
        else:
            self._vas.pop(name, None)

    def delete_volume_attachment(self, name: str) -> None:
        self._vas.pop(name, None)

    def clear(self) -> None:
        self.__init__()

    # ----- queries
    def has_path(self, node: str, resource: str, namespace: str, name: str) -> bool:
        """Whether the object (resource, namespace, name) leads to `node`."""
        if resource == "volumeattachments":
            return self._vas.get(name) == node
        reach = self._reach.get(node)
        if not reach:
            return False
        if resource in ("pods", "secrets", "configmaps", "persistentvolumeclaims", "serviceaccounts"):
            if reach.get((resource, namespace, name), 0) > 0:
                return True
        if resource == "persistentvolumes":
            pv = self._pvs.get(name)
            return bool(pv and pv[0] and reach.get(("persistentvolumeclaims", *pv[0]), 0) > 0)
        if resource == "secrets":
            for claim, secrets in self._pvs.values():
                if claim and (namespace, name) in secrets and reach.get(("persistentvolumeclaims", *claim), 0) > 0:
                    return True
        return False

    def pods_on(self, node: str) -> list[tuple[str, str]]:
        return sorted(k for k, (n, _) in self._pods.items() if n == node)


# ---------------------------------------------------------------------------
# the authorizer


def _no_relationship(node: str) -> str:
    return f"no relationship found between node '{node}' and this object"


class NodeAuthorizer:
    """``async authorize(attrs)`` for the Node authorization mode."""

    def __init__(self, graph: Graph, rules: Optional[Iterable[Mapping[str, Any]]] = None,
                 populator: Optional["GraphPopulator"] = None) -> None:
        from kybernetes.auth import bootstrap_policy
        from kybernetes.auth.rbac import CompiledRule

        self.graph = graph
        self.populator = populator
        self._rules = [CompiledRule(r) for r in (rules if rules is not None else bootstrap_policy.node_rules())]

    async def rules_for(self, user: Any, namespace: str) -> RulesResult:
        if node_identity(user)[1]:
            return RulesResult([], [], True, "node authorizer does not support user rule resolution")
        return RulesResult([], [], False)

    async def authorize(self, attrs: Attributes) -> tuple[Decision, str]:
        node, is_node = node_identity(attrs.user)
        if not is_node:
            return Decision.NO_OPINION, ""
        if not node:
            return Decision.NO_OPINION, f'unknown node for user "{attrs.user.name}"'
        if attrs.is_resource_request:
            group, resource = attrs.api_group, attrs.resource
            if group == "":
                if resource in ("secrets", "configmaps"):
                    return await self._read_namespaced(node, attrs)
                if resource == "persistentvolumeclaims":
                    if attrs.subresource == "status":
                        return await self._status_update(node, attrs)
                    return await self._get(node, attrs)
                if resource == "persistentvolumes":
                    return await self._get(node, attrs)
                if resource == "serviceaccounts":
                    return await self._create_token(node, attrs)
                if resource == "nodes":
                    return self._node(node, attrs)
                if resource == "pods":
                    return await self._pod(node, attrs)
            elif group == "storage.k8s.io" and resource == "volumeattachments":
                return await self._get(node, attrs)
            elif group == "coordination.k8s.io" and resource == "leases":
                return self._lease(node, attrs)
            elif group == "storage.k8s.io" and resource == "csinodes":
                return self._csinode(node, attrs)
        if any(r.allows(attrs) for r in self._rules):
            return Decision.ALLOW, ""
        return Decision.NO_OPINION, ""

    # ----- the graph checks
    async def _path(self, node: str, attrs: Attributes) -> tuple[Decision, str]:
        if not attrs.name:
            return Decision.NO_OPINION, "No Object name found"
        if self.populator is not None:
            await self.populator.sync()
        if self.graph.has_path(node, attrs.resource, attrs.namespace, attrs.name):
            return Decision.ALLOW, ""
        return Decision.NO_OPINION, _no_relationship(node)

    async def _read_namespaced(self, node: str, attrs: Attributes) -> tuple[Decision, str]:
        if attrs.verb not in ("get", "list", "watch"):
            return Decision.NO_OPINION, "can only read resources of this type"
        if attrs.subresource:
            return Decision.NO_OPINION, "cannot read subresource"
        if not attrs.namespace:
            return Decision.NO_OPINION, "can only read namespaced object of this type"
        return await self._path(node, attrs)

    async def _get(self, node: str, attrs: Attributes) -> tuple[Decision, str]:
        if attrs.verb != "get":
            return Decision.NO_OPINION, "can only get individual resources of this type"
        if attrs.subresource:
            return Decision.NO_OPINION, "cannot get subresource"
        return await self._path(node, attrs)

    async def _status_update(self, node: str, attrs: Attributes) -> tuple[Decision, str]:
        if attrs.verb not in ("update", "patch"):
            return Decision.NO_OPINION, "can only get/update/patch this type"
        if attrs.subresource != "status":
            return Decision.NO_OPINION, "can only update status subresource"
        return await self._path(node, attrs)

    async def _create_token(self, node: str, attrs: Attributes) -> tuple[Decision, str]:
        if attrs.verb != "create" or not attrs.name:
            return Decision.NO_OPINION, "can only create tokens for individual service accounts"
        if attrs.subresource != "token":
            return Decision.NO_OPINION, "can only create token subresource of serviceaccount"
        return await self._path(node, attrs)

    # ----- name checks
    @staticmethod
    def _lease(node: str, attrs: Attributes) -> tuple[Decision, str]:
        if attrs.verb not in ("get", "create", "update", "patch", "delete"):
            return Decision.NO_OPINION, "can only get, create, update, patch, or delete a node lease"
        if attrs.namespace != NODE_LEASE_NAMESPACE:
            return Decision.NO_OPINION, f'can only access leases in the "{NODE_LEASE_NAMESPACE}" system namespace'
        if attrs.verb != "create" and attrs.name != node:
            return Decision.NO_OPINION, "can only access node lease with the same name as the requesting node"
        return Decision.ALLOW, ""

    @staticmethod
    def _csinode(node: str, attrs: Attributes) -> tuple[Decision, str]:
        if attrs.verb not in ("get", "create", "update", "patch", "delete"):
            return Decision.NO_OPINION, "can only get, create, update, patch, or delete a CSINode"
        if attrs.subresource:
            return Decision.NO_OPINION, "cannot authorize CSINode subresources"
        if attrs.verb != "create" and attrs.name != node:
            return Decision.NO_OPINION, "can only access CSINode with the same name as the requesting node"
        return Decision.ALLOW, ""

    # ----- nodes and pods, with selectors (upstream AuthorizeNodeWithSelectors, default on)
    @staticmethod
    def _node(node: str, attrs: Attributes) -> tuple[Decision, str]:
        """Writes are left to NodeRestriction; reads name the node itself, by URL or by a
        ``metadata.name`` field selector (the request info turns that into the name)."""
        if attrs.subresource == "":
            if attrs.verb in ("create", "update", "patch"):
                return Decision.ALLOW, ""
            if attrs.verb in ("get", "list", "watch"):
                if attrs.name == node:
                    return Decision.ALLOW, ""
                if not attrs.name:
                    return Decision.NO_OPINION, f"node '{node}' cannot read all nodes, only its own Node object"
                return Decision.NO_OPINION, f"node '{node}' cannot read '{attrs.name}', only its own Node object"
        elif attrs.subresource == "status" and attrs.verb in ("update", "patch"):
            return Decision.ALLOW, ""
        return Decision.NO_OPINION, ""

    async def _pod(self, node: str, attrs: Attributes) -> tuple[Decision, str]:
        """A node lists and watches only its own pods (``spec.nodeName=<node>`` field
        selector) and gets a pod only when it is bound to it; creating/deleting (mirror
        pods), status updates and evictions are left to NodeRestriction."""
        if attrs.subresource == "":
            if attrs.verb == "get":
                return await self._get(node, attrs)
            if attrs.verb in ("list", "watch"):
                for req in attrs.field_selector:
                    if req.field == "spec.nodeName" and req.operator == "=" and req.value == node:
                        return Decision.ALLOW, ""
                if attrs.name:
                    return await self._path(node, attrs)
                return Decision.NO_OPINION, "can only list/watch pods with spec.nodeName field selector"
            if attrs.verb in ("create", "delete"):
                return Decision.ALLOW, ""
        elif attrs.subresource == "status":
            if attrs.verb in ("update", "patch"):
                return Decision.ALLOW, ""
        elif attrs.subresource == "eviction":
            if attrs.verb == "create":
                return Decision.ALLOW, ""
        return Decision.NO_OPINION, ""


# ---------------------------------------------------------------------------
# keeping the graph current from the watch caches


class GraphPopulator:
    """Feeds a Graph from the pods, persistentvolumes and volumeattachments watch caches."""

    RESOURCES = (("", "pods"), ("", "persistentvolumes"), ("storage.k8s.io", "volumeattachments"))

    def __init__(self, objects: Any, graph: Graph) -> None:
        self.objects = objects
        self.graph = graph
        self._caches: dict[str, Any] = {}
        self._applied: dict[str, int] = {}
        self._tasks: list[asyncio.Task] = []
        self._changed = asyncio.Event()
        self.sync_timeout = 5.0

    async def start(self) -> None:
        from kybernetes.api.catalog import default_catalog

        cat = default_catalog()
        for group, resource in self.RESOURCES:
            try:
                s = cat.lookup(group, "v1", resource)
            except Exception:  # a resource this build does not serve
                continue
            if s is None:
                continue
            cache = await self.objects.cache(s)
            self._caches[resource] = cache
            start = self._load(resource, cache)
            self._tasks.append(asyncio.create_task(self._follow(resource, cache, start), name=f"nodegraph:{resource}"))

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            try:
                await t
            except (asyncio.CancelledError, Exception):
                pass
        self._tasks.clear()

    def _load(self, resource: str, cache: Any) -> int:
        res = cache.list()
        for kv in res.items:
            self._put(resource, kv)
        self._applied[resource] = res.revision
        return res.revision

    def _put(self, resource: str, kv: Any) -> None:
        try:
            obj = self.objects.decode(kv)
        except Exception as e:  # an undecodable object grants nothing
            log.warning("node graph: cannot decode %s: %s", kv.key, e)
            self._delete(resource, kv.key)
            return
        if resource == "pods":
            self.graph.set_pod(obj)
        elif resource == "persistentvolumes":
            self.graph.set_pv(obj)
        else:
            self.graph.set_volume_attachment(obj)

    def _delete(self, resource: str, key: str) -> None:
        parts = key.rstrip("/").split("/")
        if resource == "pods":
            self.graph.delete_pod(parts[-2], parts[-1])
        elif resource == "persistentvolumes":
            self.graph.delete_pv(parts[-1])
        else:
            self.graph.delete_volume_attachment(parts[-1])

    def _resync(self, resource: str, cache: Any) -> int:
        """Rebuild one resource's part of the graph from the cache (after a lost watch)."""
        if resource == "pods":
            for ns, name in list(self.graph._pods):
                self.graph.delete_pod(ns, name)
        elif resource == "persistentvolumes":
            self.graph._pvs.clear()
        else:
            self.graph._vas.clear()
        return self._load(resource, cache)

    async def _follow(self, resource: str, cache: Any, start: int) -> None:
        from kybernetes.storage.errors import StoreClosedError
        from kybernetes.storage.interface import StorageError

        while True:
            w = cache.watch(start)
            try:
                async for ev in w:
                    if ev.type == "PUT":
                        self._put(resource, ev.kv)
                    else:
                        self._delete(resource, ev.kv.key)
                    self._applied[resource] = ev.revision
                    start = ev.revision
                    self._pulse()
                return
            except StoreClosedError:
                return
            except StorageError as e:  # compacted / too slow / re-listed: start over from the cache
                log.info("node graph: %s watch lost (%s); reloading", resource, e)
                start = self._resync(resource, cache)
                self._pulse()

    def _pulse(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def _behind(self, resource: str, cache: Any) -> bool:
        # The last event the cache holds (watchcache internals, read only).
        revs = getattr(cache, "_log_revs", None)
        return bool(revs) and revs[-1] > self._applied.get(resource, 0)

    async def sync(self) -> None:
        """Wait until the graph reflects every write committed so far (bounded)."""
        if not self._caches:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.sync_timeout
        current = await self.objects.store.current_revision()
        for resource, cache in self._caches.items():
            try:
                await cache.wait_for(current, timeout=max(0.0, deadline - loop.time()))
            except (TimeoutError, asyncio.TimeoutError):
                log.warning("node graph: %s cache lagging behind revision %s", resource, current)
                continue
            while self._behind(resource, cache):
                ev = self._changed
                remaining = deadline - loop.time()
                if remaining <= 0:
                    log.warning("node graph: %s lagging behind its cache", resource)
                    break
                try:
                    await asyncio.wait_for(ev.wait(), remaining)
                except (TimeoutError, asyncio.TimeoutError):
                    break


async def start_node_authorizer(objects: Any) -> NodeAuthorizer:
    """A NodeAuthorizer over a graph that follows `objects`' watch caches."""
    graph = Graph()
    populator = GraphPopulator(objects, graph)
    await populator.start()
    return NodeAuthorizer(graph, populator=populator)
