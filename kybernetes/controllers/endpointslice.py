"""The EndpointSlice controller (upstream pkg/controller/endpointslice and its
reconciler): for every Service with a selector, discovery.k8s.io/v1 EndpointSlices
named `<service>-<random>`, labelled `kubernetes.io/service-name` and
`endpointslice.kubernetes.io/managed-by: endpointslice-controller.k8s.io`, owned by the
Service, addressType IPv4, at most 100 endpoints each (maxEndpointsPerSlice), one group
of slices per distinct port set.  Each endpoint carries the conditions ready / serving /
terminating, targetRef, nodeName, zone and hostname.

The reconciler keeps churn low as upstream's does: endpoints stay in the slice they are
in, changed slices are rewritten, emptied ones deleted, new endpoints fill existing room
before new slices are created; a service without endpoints keeps one empty placeholder
slice.  A per-service tracker of the writes made refuses to act on a cache that has not
caught up with them yet (upstream's endpointSliceTracker), so no slice is duplicated.
"""

from __future__ import annotations

import copy
from typing import Any, Optional

from kybernetes.client.errors import AlreadyExists, Conflict, NotFound
from kybernetes.controllers import _pods
from kybernetes.controllers.base import Controller, Requeue
from kybernetes.controllers.endpoints import (
    HEADLESS_LABEL,
    ServicePodHandlers,
    _port_key,
    endpoint_ports,
    is_headless,
    pod_hostname,
    selected_pods,
    service_selector,
    should_pod_be_in_endpoints,
    target_ref,
)

Obj = dict[str, Any]

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
MANAGED_BY_LABEL = "endpointslice.kubernetes.io/managed-by"
CONTROLLER_NAME = "endpointslice-controller.k8s.io"
MAX_ENDPOINTS_PER_SLICE = 100
ZONE_LABEL = "topology.kubernetes.io/zone"


def _rv(obj: Obj) -> int:
    try:
        return int(obj["metadata"].get("resourceVersion") or 0)
    except (TypeError, ValueError):
        return 0


def desired_endpoints(svc: Obj, pods: list[Obj], nodes: Optional[dict[str, Obj]] = None) -> dict[tuple, list[Obj]]:
    """port-set key -> (ports, endpoints) wanted for the service, IPv4 only."""
    publish = bool((svc.get("spec") or {}).get("publishNotReadyAddresses"))
    out: dict[tuple, list[Obj]] = {}
    for pod in pods:
        if not should_pod_be_in_endpoints(pod, True):
            continue
        ips = [p.get("ip") for p in (pod["status"].get("podIPs") or []) if p.get("ip")] or [pod["status"]["podIP"]]
        v4 = [ip for ip in ips if ":" not in ip]
        if not v4:
            continue
        ports = endpoint_ports(svc, pod)
        if ports is None:
            continue
        terminating = bool(pod["metadata"].get("deletionTimestamp"))
        ready = _pods.is_pod_ready(pod)
        ep: Obj = {"addresses": [v4[0]],
                   "conditions": {"ready": publish or (ready and not terminating),
                                  "serving": publish or ready,
                                  "terminating": terminating},
                   "targetRef": target_ref(pod)}
        node_name = (pod.get("spec") or {}).get("nodeName")
        if node_name:
            ep["nodeName"] = node_name
            node = (nodes or {}).get(node_name)
            zone = ((node or {}).get("metadata") or {}).get("labels", {}).get(ZONE_LABEL) if node else None
            if zone:
                ep["zone"] = zone
        host = pod_hostname(pod, svc)
        if host:
            ep["hostname"] = host
        key = _port_key(ports)
        out.setdefault(key, []).append((sorted(ports, key=lambda p: (p.get("name") or "", p["port"])), ep))
    return {k: v for k, v in out.items()}


def _ep_id(ep: Obj) -> tuple:
    ref = ep.get("targetRef") or {}
    return (ref.get("uid") or ref.get("name") or "", tuple(ep.get("addresses") or []))


def plan(svc: Obj, existing: list[Obj], wanted: dict[tuple, list], max_per_slice: int = MAX_ENDPOINTS_PER_SLICE
         ) -> tuple[list[Obj], list[Obj], list[Obj]]:
    """(to_create, to_update, to_delete) slices that turn `existing` into `wanted`."""
    creates: list[Obj] = []
    updates: list[Obj] = []
    deletes: list[Obj] = []
    by_key: dict[tuple, list[Obj]] = {}
    for s in existing:
        by_key.setdefault(_port_key(s.get("ports") or []), []).append(s)
    labels = slice_labels(svc)

    def new_slice(ports: list[Obj], eps: list[Obj]) -> Obj:
        return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                "metadata": {"generateName": f"{svc['metadata']['name']}-", "namespace": svc["metadata"]["namespace"],
                             "labels": dict(labels),
                             "ownerReferences": [_pods.controller_ref(svc, "v1", "Service")]},
                "addressType": "IPv4", "endpoints": eps, "ports": ports}

    if not wanted:
        # keep (or create) one empty placeholder slice
        placeholder = next((s for s in existing if not s.get("endpoints") and not s.get("ports")), None)
        for s in existing:
            if s is not placeholder:
                deletes.append(s)
        if placeholder is None:
            creates.append(new_slice([], []))
            creates[-1].pop("ports")
        elif (placeholder["metadata"].get("labels") or {}) != labels:
            p = copy.deepcopy(placeholder)
            p["metadata"]["labels"] = dict(labels)
            updates.append(p)
        return creates, updates, deletes

    for key, slices in by_key.items():
        if key not in wanted:
            deletes.extend(slices)
    for key, items in wanted.items():
        ports = items[0][0]
        want = {_ep_id(ep): ep for _, ep in items}
        placed: set[tuple] = set()
        kept: list[tuple[Obj, bool]] = []  # (slice body, changed)
        for s in by_key.get(key, []):
            eps = []
            changed = False
            for ep in s.get("endpoints") or []:
                i = _ep_id(ep)
                if i in want and i not in placed:
                    placed.add(i)
                    eps.append(want[i])
                    changed |= want[i] != ep
                else:
                    changed = True
            if not eps:
                deletes.append(s)
                continue
            body = copy.deepcopy(s)
            body["endpoints"] = eps
            if (s.get("ports") or []) != ports or (s["metadata"].get("labels") or {}) != labels:
                body["ports"] = ports
                body["metadata"]["labels"] = dict(labels)
                changed = True
            kept.append((body, changed))
        pending = [ep for i, ep in want.items() if i not in placed]
        # fill room in slices being changed anyway, then in the others, then new slices
        for prefer_changed in (True, False):
            for idx, (body, changed) in enumerate(kept):
                if changed != prefer_changed or not pending:
                    continue
                room = max_per_slice - len(body["endpoints"])
                if room > 0:
                    body["endpoints"].extend(pending[:room])
                    pending = pending[room:]
                    kept[idx] = (body, True)
        for body, changed in kept:
            if changed:
                updates.append(body)
        while pending:
            creates.append(new_slice(ports, pending[:max_per_slice]))
            pending = pending[max_per_slice:]
    return creates, updates, deletes


def slice_labels(svc: Obj) -> dict[str, str]:
    labels = {k: v for k, v in ((svc.get("metadata") or {}).get("labels") or {}).items()
              if k not in (SERVICE_NAME_LABEL, MANAGED_BY_LABEL)}
    labels[SERVICE_NAME_LABEL] = svc["metadata"]["name"]
    labels[MANAGED_BY_LABEL] = CONTROLLER_NAME
    if is_headless(svc):
        labels[HEADLESS_LABEL] = ""
    else:
        labels.pop(HEADLESS_LABEL, None)
    return labels


class EndpointSliceController(ServicePodHandlers, Controller):
    name = "endpointslice"
    workers = 5
    max_endpoints_per_slice = MAX_ENDPOINTS_PER_SLICE

    def setup(self) -> None:
        self.services = self.watch("", "v1", "services")
        self.pods = self.watch("", "v1", "pods", enqueue=None)
        self.pods.add_handlers(on_add=self._pod_changed, on_update=self._pod_updated, on_delete=self._pod_changed)
        self.nodes = self.watch("", "v1", "nodes", enqueue=None)
        self.slices = self.watch("discovery.k8s.io", "v1", "endpointslices",
                                 label_selector=f"{MANAGED_BY_LABEL}={CONTROLLER_NAME}", enqueue=self._slice_key)
        self.slices.store.add_index("endpointslice-service", lambda s: [
            f"{s['metadata'].get('namespace')}/{(s['metadata'].get('labels') or {}).get(SERVICE_NAME_LABEL, '')}"])
        self.api = self.resource("discovery.k8s.io", "v1", "endpointslices")
        # service key -> {slice name: resourceVersion written, or None when deleted}
        self._written: dict[str, dict[str, Optional[int]]] = {}

    def _slice_key(self, s: Obj) -> Optional[str]:
        svc = (s["metadata"].get("labels") or {}).get(SERVICE_NAME_LABEL)
        return f"{s['metadata'].get('namespace')}/{svc}" if svc else None

    def _cache_is_stale(self, key: str, existing: list[Obj]) -> bool:
        written = self._written.get(key)
        if not written:
            return False
        have = {s["metadata"]["name"]: _rv(s) for s in existing}
        for name, rv in written.items():
            if rv is None and name in have:
                return True
            if rv is not None and have.get(name, -1) < rv:
                return True
        self._written.pop(key, None)
        return False

    async def reconcile(self, key: str) -> None:
        ns, name = key.split("/", 1)
        existing = self.slices.store.by_index("endpointslice-service", key)
        if self._cache_is_stale(key, existing):
            raise Requeue(reason=f"{key}: endpointslice cache is behind")
        svc = self.services.get(key)
        if svc is None or service_selector(svc) is None or svc["metadata"].get("deletionTimestamp"):
            # the Service's garbage collection removes owned slices too; do it now
            written: dict[str, Optional[int]] = {}
            for s in existing:
                try:
                    await self.api.delete(s["metadata"]["name"], ns)
                except NotFound:
                    pass
                written[s["metadata"]["name"]] = None
            if written:
                self._written[key] = written
            return
        uid = svc["metadata"].get("uid")
        # slices owned by an older incarnation of the service go
        stale_owner = [s for s in existing if not any(r.get("uid") == uid for r in s["metadata"].get("ownerReferences") or [])]
        mine = [s for s in existing if s not in stale_owner]
        wanted = desired_endpoints(svc, selected_pods(svc, self.pods.by_namespace(ns)),
                                   {n["metadata"]["name"]: n for n in self.nodes.list()})
        creates, updates, deletes = plan(svc, mine, wanted, self.max_endpoints_per_slice)
        deletes += stale_owner
        written = {}
        try:
            for body in creates:
                created = await self.api.create(body, ns)
                written[created["metadata"]["name"]] = _rv(created)
            for body in updates:
                try:
                    updated = await self.api.update(body, ns)
                except (Conflict, NotFound):
                    raise Requeue(reason=f"{key}: endpointslice changed underneath") from None
                written[updated["metadata"]["name"]] = _rv(updated)
            for s in deletes:
                try:
                    await self.api.delete(s["metadata"]["name"], ns, preconditions={"uid": s["metadata"]["uid"]})
                except (NotFound, Conflict):
                    pass
                written[s["metadata"]["name"]] = None
        except AlreadyExists:
            raise Requeue(reason=f"{key}: name clash") from None
        finally:
            if written:
                self._written[key] = written
