"""The Endpoints controller (upstream pkg/controller/endpoint): for every Service with a
selector, an Endpoints object of the same name listing the matching pods' IPs —
ready pods under `addresses`, the others under `notReadyAddresses` — with the
service's ports resolved against each pod's container ports (by name or number).

Services without a selector are skipped (their Endpoints are someone else's: the API
server's own `default/kubernetes`, or hand-written ones).  Deleting a Service deletes
its Endpoints.  Also holds the pod/port helpers the EndpointSlice controller shares.
"""

from __future__ import annotations

import copy
from typing import Any, Callable, Optional

from kybernetes.api.selectors import from_label_selector
from kybernetes.client.errors import AlreadyExists, Conflict, NotFound
from kybernetes.client.informer import object_key
from kybernetes.controllers import _pods
from kybernetes.controllers.base import Controller, Requeue

Obj = dict[str, Any]

HEADLESS_LABEL = "service.kubernetes.io/headless"
OVER_CAPACITY = "endpoints.kubernetes.io/over-capacity"
MAX_CAPACITY = 1000  # upstream maxCapacity: addresses per Endpoints object
LAST_CHANGE_TRIGGER_TIME = "endpoints.kubernetes.io/last-change-trigger-time"
API_SERVER_ENDPOINTS = "default/kubernetes"


# ---------------------------------------------------------------------- shared helpers
def service_selector(svc: Obj) -> Optional[dict[str, str]]:
    """The service's selector, or None when it has none (then no controller manages its
    endpoints)."""
    sel = (svc.get("spec") or {}).get("selector")
    return sel or None


def is_headless(svc: Obj) -> bool:
    return (svc.get("spec") or {}).get("clusterIP") == "None"


def selected_pods(svc: Obj, pods: list[Obj]) -> list[Obj]:
    sel = service_selector(svc)
    if sel is None:
        return []
    s = from_label_selector({"matchLabels": sel})
    return [p for p in pods if s.matches((p.get("metadata") or {}).get("labels") or {})]


def find_port(pod: Obj, service_port: Obj) -> Optional[int]:
    """The pod's port for a service port (upstream podutil.FindPort): a named targetPort
    is looked up among the containers' ports by name and protocol; a number is used as
    is; no targetPort means the service port itself."""
    target = service_port.get("targetPort")
    if target is None or target == "":
        target = service_port.get("port")
    if isinstance(target, str) and not target.isdigit():
        proto = service_port.get("protocol") or "TCP"
        for c in (pod.get("spec") or {}).get("containers") or []:
            for p in c.get("ports") or []:
                if p.get("name") == target and (p.get("protocol") or "TCP") == proto:
                    return int(p["containerPort"])
        return None
    try:
        return int(target)
    except (TypeError, ValueError):
        return None


def should_pod_be_in_endpoints(pod: Obj, include_terminating: bool) -> bool:
    """Upstream endpointsliceutil.ShouldPodBeInEndpoints."""
    status = pod.get("status") or {}
    if not status.get("podIP"):
        return False
    if status.get("phase") in ("Succeeded", "Failed"):
        return False
    if not include_terminating and (pod.get("metadata") or {}).get("deletionTimestamp"):
        return False
    return True


def pod_hostname(pod: Obj, svc: Obj) -> Optional[str]:
    spec = pod.get("spec") or {}
    if spec.get("hostname") and spec.get("subdomain") == svc["metadata"]["name"] and \
            pod["metadata"].get("namespace") == svc["metadata"].get("namespace"):
        return spec["hostname"]
    return None


def target_ref(pod: Obj) -> Obj:
    m = pod["metadata"]
    return {"kind": "Pod", "namespace": m.get("namespace"), "name": m["name"], "uid": m.get("uid")}


def endpoint_ports(svc: Obj, pod: Obj) -> Optional[list[Obj]]:
    """The service's ports resolved for one pod (ports that do not resolve are left
    out); None when the service has ports and none resolves."""
    out: list[Obj] = []
    sports = (svc.get("spec") or {}).get("ports") or []
    for sp in sports:
        num = find_port(pod, sp)
        if num is None:
            continue
        ep: Obj = {"port": num, "protocol": sp.get("protocol") or "TCP"}
        if sp.get("name"):
            ep["name"] = sp["name"]
        if sp.get("appProtocol"):
            ep["appProtocol"] = sp["appProtocol"]
        out.append(ep)
    if sports and not out:
        return None
    return out


def endpoint_labels(svc: Obj) -> dict[str, str]:
    labels = dict((svc.get("metadata") or {}).get("labels") or {})
    if is_headless(svc):
        labels[HEADLESS_LABEL] = ""
    else:
        labels.pop(HEADLESS_LABEL, None)
    return labels


def _port_key(ports: list[Obj]) -> tuple:
    return tuple(sorted((p.get("name") or "", p["port"], p.get("protocol") or "TCP", p.get("appProtocol") or "")
                        for p in ports))


def build_subsets(svc: Obj, pods: list[Obj]) -> tuple[list[Obj], int]:
    """The Endpoints subsets for a service over its pods (grouped by identical port
    sets and sorted, as upstream's RepackSubsets), and the number of addresses."""
    tolerate_unready = bool((svc.get("spec") or {}).get("publishNotReadyAddresses"))
    groups: dict[tuple, Obj] = {}
    total = 0
    for pod in pods:
        if not should_pod_be_in_endpoints(pod, tolerate_unready):
            continue
        ports = endpoint_ports(svc, pod)
        if ports is None:
            continue
        addr: Obj = {"ip": pod["status"]["podIP"], "targetRef": target_ref(pod)}
        if (pod.get("spec") or {}).get("nodeName"):
            addr["nodeName"] = pod["spec"]["nodeName"]
        host = pod_hostname(pod, svc)
        if host:
            addr["hostname"] = host
        key = _port_key(ports)
        subset = groups.setdefault(key, {"ports": sorted(ports, key=lambda p: (p.get("name") or "", p["port"]))})
        if tolerate_unready or _pods.is_pod_ready(pod):
            subset.setdefault("addresses", []).append(addr)
        else:
            subset.setdefault("notReadyAddresses", []).append(addr)
        total += 1
    subsets = []
    for key in sorted(groups):
        s = groups[key]
        for k in ("addresses", "notReadyAddresses"):
            if k in s:
                s[k].sort(key=lambda a: (a["ip"], a["targetRef"]["name"]))
        if not s["ports"]:
            del s["ports"]
        subsets.append(s)
    return subsets, total


def truncate_subsets(subsets: list[Obj], limit: int = MAX_CAPACITY) -> list[Obj]:
    """At most `limit` addresses, ready ones first (upstream truncateEndpoints, simplified)."""
    out, left = [], limit
    for kind in ("addresses", "notReadyAddresses"):
        for s in subsets:
            if kind in s and left > 0:
                s2 = next((o for o in out if o.get("ports") == s.get("ports")), None)
                if s2 is None:
                    s2 = {k: v for k, v in s.items() if k == "ports"}
                    out.append(s2)
                s2[kind] = s[kind][:left]
                left -= len(s2[kind])
    return out


# ---------------------------------------------------------------------- controller
class ServicePodHandlers:
    """The pod event handlers of a controller keyed by Service (Endpoints,
    EndpointSlice): a pod added, deleted or changed wakes every Service in its
    namespace that selects it, and on a label change also those that selected it
    before.  The controller keeps its Services' informer in `self.services`."""

    services: Any
    enqueue: Callable[[str], None]  # Controller.enqueue

    def _services_for(self, pod: Obj) -> list[str]:
        ns = (pod.get("metadata") or {}).get("namespace") or ""
        return [object_key(s) for s in self.services.by_namespace(ns) if selected_pods(s, [pod])]

    def _pod_changed(self, pod: Obj) -> None:
        for key in self._services_for(pod):
            self.enqueue(key)

    def _pod_updated(self, old: Obj, new: Obj) -> None:
        if old["metadata"].get("resourceVersion") == new["metadata"].get("resourceVersion"):
            return
        keys = set(self._services_for(new))
        if (old["metadata"].get("labels") or {}) != (new["metadata"].get("labels") or {}):
            keys |= set(self._services_for(old))
        for key in keys:
            self.enqueue(key)


class EndpointsController(ServicePodHandlers, Controller):
    name = "endpoints"
    workers = 5

    def setup(self) -> None:
        self.services = self.watch("", "v1", "services")
        self.pods = self.watch("", "v1", "pods", enqueue=None)
        self.pods.add_handlers(on_add=self._pod_changed, on_update=self._pod_updated, on_delete=self._pod_changed)
        self.endpoints = self.watch("", "v1", "endpoints", enqueue=self._endpoints_key)
        self.ep_api = self.resource("", "v1", "endpoints")

    def _endpoints_key(self, ep: Obj) -> Optional[str]:
        key = object_key(ep)
        svc = self.services.get(key)
        return key if svc is not None and service_selector(svc) is not None else None

    async def reconcile(self, key: str) -> None:
        if key == API_SERVER_ENDPOINTS:
            return  # the API server keeps its own endpoints
        ns, name = key.split("/", 1)
        svc = self.services.get(key)
        if svc is None:
            try:
                await self.ep_api.delete(name, ns)
            except NotFound:
                pass
            return
        if service_selector(svc) is None:
            return
        pods = selected_pods(svc, self.pods.by_namespace(ns))
        subsets, total = build_subsets(svc, pods)
        annotations: dict[str, str] = {}
        if total > MAX_CAPACITY:
            subsets = truncate_subsets(subsets)
            annotations[OVER_CAPACITY] = "truncated"
        labels = endpoint_labels(svc)
        current = self.endpoints.get(key)
        if current is not None:
            cur_ann = dict(current["metadata"].get("annotations") or {})
            cur_ann.pop(LAST_CHANGE_TRIGGER_TIME, None)
            if (current.get("subsets") or []) == subsets and (current["metadata"].get("labels") or {}) == labels \
                    and cur_ann.get(OVER_CAPACITY) == annotations.get(OVER_CAPACITY):
                return
            body = copy.deepcopy(current)
            ann = dict(body["metadata"].get("annotations") or {})
            ann.pop(OVER_CAPACITY, None)
            ann.update(annotations)
            body["metadata"]["annotations"] = ann
            body["metadata"]["labels"] = labels
            body["subsets"] = subsets
            try:
                await self.ep_api.update(body, ns)
            except Conflict:
                raise Requeue(reason=f"{key}: endpoints changed underneath") from None
            except NotFound:
                raise Requeue(reason=f"{key}: endpoints vanished") from None
            return
        body = {"apiVersion": "v1", "kind": "Endpoints",
                "metadata": {"name": name, "namespace": ns, "labels": labels, "annotations": annotations},
                "subsets": subsets}
        try:
            await self.ep_api.create(body, ns)
        except AlreadyExists:
            raise Requeue(reason=f"{key}: endpoints exist, cache is behind") from None
