"""The NodeRestriction admission plugin (upstream plugin/pkg/admission/noderestriction).

Limits what a kubelet (``system:node:<name>`` in ``system:nodes``) may write: its own Node
object (no node-restriction labels, no unknown kubernetes.io/k8s.io labels, no taint
changes), mirror pods bound to itself that reference nothing else, status of pods bound
to itself, deletion and eviction of its own pods, its own Lease and CSINode, PVC status,
TokenRequests bound to its pods.  Messages match upstream's.

``admission(objects)`` gives the API server's validating step ``async fn(op, r, new, old)``;
``NodeRestriction.check(...)`` is the same check without a request (used by tests).
"""

from __future__ import annotations

import copy
from typing import Any, Awaitable, Callable, Mapping, Optional

from kybernetes.apiserver import errors
from kybernetes.auth.node_authorizer import (
    MIRROR_POD_ANNOTATION,
    NODE_LEASE_NAMESPACE,
    node_identity,
    pod_configmap_names,
    pod_secret_names,
)

__all__ = ["NodeRestriction", "admission", "forbidden_labels", "is_kubelet_label"]

Obj = dict[str, Any]
Getter = Callable[[str, str], Awaitable[Optional[Obj]]]  # (namespace, name) -> object or None

LABEL_NAMESPACE_NODE_RESTRICTION = "node-restriction.kubernetes.io"

# upstream pkg/kubelet/apis: labels a kubelet may set on its own Node
_KUBELET_LABELS = frozenset({
    "kubernetes.io/hostname",
    "topology.kubernetes.io/zone",
    "topology.kubernetes.io/region",
    "failure-domain.beta.kubernetes.io/zone",
    "failure-domain.beta.kubernetes.io/region",
    "node.kubernetes.io/instance-type",
    "beta.kubernetes.io/instance-type",
    "kubernetes.io/os",
    "kubernetes.io/arch",
    "beta.kubernetes.io/os",
    "beta.kubernetes.io/arch",
})
_KUBELET_LABEL_NAMESPACES = ("kubelet.kubernetes.io", "node.kubernetes.io")


def _label_namespace(key: str) -> str:
    parts = key.split("/", 1)
    return parts[0] if len(parts) == 2 else ""


def is_kubelet_label(key: str) -> bool:
    if key in _KUBELET_LABELS:
        return True
    ns = _label_namespace(key)
    return any(ns == n or ns.endswith("." + n) for n in _KUBELET_LABEL_NAMESPACES)


def _is_kubernetes_label(key: str) -> bool:
    ns = _label_namespace(key)
    return ns in ("kubernetes.io", "k8s.io") or ns.endswith(".kubernetes.io") or ns.endswith(".k8s.io")


def _modified_labels(a: Optional[Mapping], b: Optional[Mapping]) -> set[str]:
    a, b = a or {}, b or {}
    return {k for k in set(a) | set(b) if k not in a or k not in b or a[k] != b[k]}


def forbidden_labels(modified: set[str]) -> list[str]:
    """The labels of `modified` a node may not add, remove or change (sorted, as Go's sets.List)."""
    out = set()
    for label in modified:
        ns = _label_namespace(label)
        if ns == LABEL_NAMESPACE_NODE_RESTRICTION or ns.endswith("." + LABEL_NAMESPACE_NODE_RESTRICTION):
            out.add(label)
        if _is_kubernetes_label(label) and not is_kubelet_label(label):
            out.add(label)
    return sorted(out)


def _q(s: str) -> str:
    from kybernetes.auth.authorizer import go_quote

    return go_quote(s)


def _meta(o: Optional[Mapping]) -> Mapping:
    return (o or {}).get("metadata") or {}


def _spec(o: Optional[Mapping]) -> Mapping:
    return (o or {}).get("spec") or {}


class NodeRestriction:
    def __init__(self, get_pod: Getter, get_node: Callable[[str], Awaitable[Optional[Obj]]]) -> None:
        self.get_pod = get_pod
        self.get_node = get_node

    async def check(self, user: Any, op: str, group: str, resource: str, subresource: str, namespace: str,
                    name: str, new: Optional[Obj], old: Optional[Obj]) -> None:
        """Raise APIError(403/404) when the node may not do this; return otherwise."""
        node, is_node = node_identity(user)
        if not is_node:
            return
        obj_name = name or _meta(new).get("name") or _meta(old).get("name") or ""

        def forbid(why: str) -> errors.APIError:
            return errors.forbidden(resource, group, obj_name, why)

        if not node:
            raise forbid(f"could not determine node from user {_q(user.name)}")
        if group == "" and resource == "pods":
            if subresource == "":
                await self._pod(node, op, namespace, name, new, forbid)
            elif subresource == "status":
                self._pod_status(node, op, new, old, forbid)
            elif subresource == "eviction":
                await self._pod_eviction(node, op, namespace, name, new, forbid)
            else:
                raise forbid(f"unexpected pod subresource {_q(subresource)}, only 'status' and 'eviction' are allowed")
        elif group == "" and resource == "nodes":
            self._node(node, op, name or _meta(new).get("name") or "", new, old, forbid)
        elif group == "" and resource == "persistentvolumeclaims":
            if subresource != "status":
                raise forbid("may only update PVC status")
            self._pvc_status(node, op, new, old, forbid)
        elif group == "" and resource == "serviceaccounts":
            await self._service_account(node, op, subresource, namespace, new, forbid)
        elif group == "coordination.k8s.io" and resource == "leases":
            self._lease(node, op, namespace, name, new, forbid)
        elif group == "storage.k8s.io" and resource == "csinodes":
            self._csinode(node, op, name, new, forbid)

    # ----- pods
    async def _pod(self, node: str, op: str, namespace: str, name: str, new: Optional[Obj], forbid) -> None:
        if op == "CREATE":
            pod = new or {}
            self._pod_create_owner(node, pod, forbid)
            await self._verify_owner_uid(node, pod, forbid)
            self._pod_create_refs(node, pod, forbid)
            return
        if op == "DELETE":
            existing = await self.get_pod(namespace, name)
            if existing is None:
                raise errors.not_found("pods", "", name)
            if _spec(existing).get("nodeName") != node:
                raise forbid(f"node {_q(node)} can only delete pods with spec.nodeName set to itself")
            return
        raise forbid(f"unexpected operation {_q(op)}, node {_q(node)} can only create and delete mirror pods")

    @staticmethod
    def _pod_create_owner(node: str, pod: Obj, forbid) -> None:
        meta, spec = _meta(pod), _spec(pod)
        if MIRROR_POD_ANNOTATION not in (meta.get("annotations") or {}):
            raise forbid(f"pod does not have {_q(MIRROR_POD_ANNOTATION)} annotation, "
                         f"node {_q(node)} can only create mirror pods")
        if spec.get("nodeName") != node:
            raise forbid(f"node {_q(node)} can only create pods with spec.nodeName set to itself")
        owners = meta.get("ownerReferences") or []
        if len(owners) > 1:
            raise forbid(f"node {_q(node)} can only create pods with a single owner reference set to itself")
        if not owners:
            raise forbid(f"node {_q(node)} can only create pods with an owner reference set to itself")
        owner = owners[0]
        if owner.get("apiVersion") != "v1" or owner.get("kind") != "Node" or owner.get("name") != node:
            raise forbid(f"node {_q(node)} can only create pods with an owner reference set to itself")
        if not owner.get("controller"):
            raise forbid(f"node {_q(node)} can only create pods with a controller owner reference set to itself")
        if owner.get("blockOwnerDeletion"):
            raise forbid(f"node {_q(node)} must not set blockOwnerDeletion on an owner reference")

    @staticmethod
    def _pod_create_refs(node: str, pod: Obj, forbid) -> None:
        spec = _spec(pod)
        if spec.get("serviceAccountName"):
            raise forbid(f"node {_q(node)} can not create pods that reference a service account")
        if pod_secret_names(pod):
            raise forbid(f"node {_q(node)} can not create pods that reference secrets")
        if pod_configmap_names(pod):
            raise forbid(f"node {_q(node)} can not create pods that reference configmaps")
        for v in spec.get("volumes") or ():
            for src in ((v.get("projected") or {}).get("sources") or ()):
                if (src or {}).get("clusterTrustBundle") is not None:
                    raise forbid(f"node {_q(node)} can not create pods that reference clustertrustbundles")
        for v in spec.get("volumes") or ():
            if v.get("persistentVolumeClaim") is not None:
                raise forbid(f"node {_q(node)} can not create pods that reference persistentvolumeclaims")

    @staticmethod
    def _pod_status(node: str, op: str, new: Optional[Obj], old: Optional[Obj], forbid) -> None:
        if op != "UPDATE":
            raise forbid(f"unexpected operation {_q(op)}")
        if _spec(old).get("nodeName") != node:
            raise forbid(f"node {_q(node)} can only update pod status for pods with spec.nodeName set to itself")
        if (_meta(old).get("labels") or {}) != (_meta(new).get("labels") or {}):
            raise forbid(f"node {_q(node)} cannot update labels through pod status")
        a = ((old or {}).get("status") or {}).get("resourceClaimStatuses") or []
        b = ((new or {}).get("status") or {}).get("resourceClaimStatuses") or []
        if [(x.get("name"), x.get("resourceClaimName")) for x in a] != [(x.get("name"), x.get("resourceClaimName")) for x in b]:
            raise forbid(f"node {_q(node)} cannot update resource claim statues")

    async def _pod_eviction(self, node: str, op: str, namespace: str, name: str, new: Optional[Obj], forbid) -> None:
        if op != "CREATE":
            raise forbid(f"unexpected operation {op}")
        pod_name = name or _meta(new).get("name") or ""
        if not pod_name:
            raise forbid("could not determine pod from request data")
        existing = await self.get_pod(namespace, pod_name)
        if existing is None:
            raise errors.not_found("pods", "", pod_name)
        if _spec(existing).get("nodeName") != node:
            raise forbid(f"node {node} can only evict pods with spec.nodeName set to itself")

    # ----- nodes
    @staticmethod
    def _node(node: str, op: str, requested: str, new: Optional[Obj], old: Optional[Obj], forbid) -> None:
        if requested != node:
            raise forbid(f"node {_q(node)} is not allowed to modify node {_q(requested)}")
        if op == "CREATE":
            if _spec(new).get("configSource") is not None:
                raise forbid(f"node {_q(node)} is not allowed to create pods with a non-nil configSource")
            bad = forbidden_labels(_modified_labels(_meta(new).get("labels"), None))
            if bad:
                raise forbid(f"node {_q(node)} is not allowed to set the following labels: {', '.join(bad)}")
        if op == "UPDATE":
            cs = _spec(new).get("configSource")
            if cs is not None and cs != _spec(old).get("configSource"):
                raise forbid(f"node {_q(node)} is not allowed to update configSource to a new non-nil configSource")
            if (_spec(new).get("taints") or []) != (_spec(old).get("taints") or []):
                raise forbid(f"node {_q(node)} is not allowed to modify taints")
            bad = forbidden_labels(_modified_labels(_meta(new).get("labels"), _meta(old).get("labels")))
            if bad:
                raise forbid(f"is not allowed to modify labels: {', '.join(bad)}")

    # ----- others
    @staticmethod
    def _pvc_status(node: str, op: str, new: Optional[Obj], old: Optional[Obj], forbid) -> None:
        if op != "UPDATE":
            raise forbid(f"unexpected operation {_q(op)}")

        def strip(o: Optional[Obj]) -> Obj:
            o = copy.deepcopy(o or {})
            meta = o.setdefault("metadata", {})
            for k in ("resourceVersion", "managedFields"):
                meta.pop(k, None)
            st = o.setdefault("status", {})
            for k in ("capacity", "conditions", "allocatedResourceStatuses", "allocatedResources"):
                st.pop(k, None)
            return o

        if strip(old) != strip(new):
            raise forbid(f"node {_q(node)} is not allowed to update fields other than status.capacity and "
                         "status.conditions")

    async def _service_account(self, node: str, op: str, subresource: str, namespace: str,
                               new: Optional[Obj], forbid) -> None:
        if op != "CREATE" or subresource != "token":
            return
        ref = _spec(new).get("boundObjectRef")
        if not ref or ref.get("apiVersion") != "v1" or ref.get("kind") != "Pod" or not ref.get("name"):
            raise forbid("node requested token not bound to a pod")
        if not ref.get("uid"):
            raise forbid("node requested token with a pod binding without a uid")
        pod = await self.get_pod(namespace, ref["name"])
        if pod is None:
            raise errors.not_found("pods", "", ref["name"])
        if ref["uid"] != _meta(pod).get("uid"):
            raise forbid(f"the UID in the bound object reference ({ref['uid']}) does not match the UID in record. "
                         "The object might have been deleted and then recreated")
        if _spec(pod).get("nodeName") != node:
            raise forbid("node requested token bound to a pod scheduled on a different node")

    @staticmethod
    def _lease(node: str, op: str, namespace: str, name: str, new: Optional[Obj], forbid) -> None:
        if namespace != NODE_LEASE_NAMESPACE:
            raise forbid(f"can only access leases in the {_q(NODE_LEASE_NAMESPACE)} system namespace")
        lease_name = _meta(new).get("name") if op == "CREATE" else name
        if lease_name != node:
            raise forbid("can only access node lease with the same name as the requesting node")

    @staticmethod
    def _csinode(node: str, op: str, name: str, new: Optional[Obj], forbid) -> None:
        target = _meta(new).get("name") if op == "CREATE" else name
        if target != node:
            raise forbid("can only access CSINode with the same name as the requesting node")

    async def _verify_owner_uid(self, node: str, pod: Obj, forbid) -> None:
        """Upstream's final mirror-pod check: the Node owner reference carries the node's UID."""
        owner = (_meta(pod).get("ownerReferences") or [{}])[0]
        current = await self.get_node(node)
        if current is None:
            raise errors.not_found("nodes", "", node)
        uid = _meta(current).get("uid") or ""
        if owner.get("uid") != uid:
            raise forbid(f"node {node} UID mismatch: expected {owner.get('uid') or ''} got {uid}")


def admission(objects: Any) -> Callable[[str, Any, Optional[Obj], Optional[Obj]], Awaitable[None]]:
    """The validating admission step for the API server."""
    from kybernetes.api.catalog import default_catalog
    from kybernetes.apiserver.objects import object_key

    cat = default_catalog()

    async def _get(resource: str, namespace: str, name: str) -> Optional[Obj]:
        s = cat.lookup("", "v1", resource)
        kv = await objects.read(s, object_key(s, namespace, name))
        return objects.decode(kv) if kv is not None else None

    plugin = NodeRestriction(lambda ns, n: _get("pods", ns, n), lambda n: _get("nodes", "", n))

    async def check(op: str, r: Any, new: Optional[Obj], old: Optional[Obj]) -> None:
        user = r.http.get("user") if hasattr(r.http, "get") else None
        if not node_identity(user)[1]:
            return
        s, info = r.strategy, r.info
        await plugin.check(user, op, s.group, s.resource, info.subresource, info.namespace, info.name, new, old)

    return check
