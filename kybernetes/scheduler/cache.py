"""The scheduler's in-memory view of nodes and the pods on them (upstream
pkg/scheduler/backend/cache).  A pod the scheduler has decided on but not yet seen bound
through the watch is *assumed*: it already counts against its node so that the next
decision never waits on the API, and is forgotten if binding fails.

Two indexes keep inter-pod affinity cheap: for every distinct affinity term of the pods
placed so far (the replicas of one workload share one), the topology domains it covers
and how many pods (or how much preference weight) stand behind it there.  A scheduling
cycle then checks the incoming pod against each distinct term once, not against every
pod in the cluster."""

from __future__ import annotations

import logging
from typing import Any, Optional

from kybernetes.scheduler.framework import NodeInfo, PodInfo, pod_key
from kybernetes.scheduler.terms import AffinityTerm
from kybernetes.scheduler.volumecache import VolumeCache

# existing pods' required affinity terms count this much in the InterPodAffinity score
# (upstream hardPodAffinityWeight default)
HARD_POD_AFFINITY_WEIGHT = 1
ANTI, SCORE = "anti", "score"

log = logging.getLogger("kybernetes.scheduler.cache")
Obj = dict[str, Any]


class Cache:
    def __init__(self) -> None:
        self.nodes: dict[str, NodeInfo] = {}
        self._pod_node: dict[str, str] = {}    # pod key -> node name, for every counted pod
        self.assumed: set[str] = set()
        self._binding: set[str] = set()        # assumed pods whose bind call is in flight
        self._list: Optional[list[NodeInfo]] = None
        self._any_taints = self._any_unschedulable = False
        self.namespaces: dict[str, dict[str, str]] = {}
        # index name -> term key -> (a term with that key, {(topology key, value): weight})
        self.term_index: dict[str, dict[tuple, tuple[AffinityTerm, dict[tuple[str, str], int]]]] = {ANTI: {}, SCORE: {}}
        self.nominated: dict[str, tuple[str, PodInfo]] = {}
        self.pdbs: dict[tuple[str, str], Obj] = {}   # pod key -> (node, pod) from status.nominatedNodeName
        # what selects pods, for PodTopologySpread's system default constraints:
        # namespace -> service name -> spec.selector, and (kind, namespace, name) -> selector
        self.services: dict[str, dict[str, dict[str, str]]] = {}
        self.workloads: dict[tuple[str, str, str], Any] = {}
        # PVs, PVCs and StorageClasses (with assumed PV bindings) for VolumeBinding
        self.volumes = VolumeCache()

    # -- services and workload controllers (PodTopologySpread's default selector)
    def set_service(self, svc: Obj) -> None:
        m = svc["metadata"]
        sel = (svc.get("spec") or {}).get("selector")
        by_name = self.services.setdefault(m.get("namespace") or "", {})
        if sel is None:
            by_name.pop(m["name"], None)  # a Service without a selector selects no pod
        else:
            by_name[m["name"]] = sel

    def remove_service(self, svc: Obj) -> None:
        m = svc["metadata"]
        self.services.get(m.get("namespace") or "", {}).pop(m["name"], None)

    def set_workload(self, kind: str, obj: Obj) -> None:
        m = obj["metadata"]
        self.workloads[(kind, m.get("namespace") or "", m["name"])] = (obj.get("spec") or {}).get("selector")

    def remove_workload(self, kind: str, obj: Obj) -> None:
        m = obj["metadata"]
        self.workloads.pop((kind, m.get("namespace") or "", m["name"]), None)

    # -- namespaces (for namespaceSelector in affinity terms)
    def set_namespace(self, ns: Obj) -> None:
        self.namespaces[ns["metadata"]["name"]] = ns["metadata"].get("labels") or {}

    def remove_namespace(self, ns: Obj) -> None:
        self.namespaces.pop(ns["metadata"]["name"], None)

    def namespace_labels(self, name: str) -> dict[str, str]:
        return self.namespaces.get(name) or {}

    # -- nominated pods (preemptors waiting for their victims to go)
    def set_nominated(self, pod: Obj, node: Optional[str]) -> None:
        key = pod_key(pod)
        if node:
            self.nominated[key] = (node, PodInfo(pod))
        else:
            self.nominated.pop(key, None)

    def nominated_on(self, node: str) -> list[PodInfo]:
        return [pi for n, pi in self.nominated.values() if n == node]

    # -- nodes
    def add_node(self, node: Obj) -> NodeInfo:
        name = node["metadata"]["name"]
        ni = self.nodes.get(name)
        if ni is None:
            ni = self.nodes[name] = NodeInfo(node)
        else:
            had, old_labels = ni.node is not None, ni.labels
            ni.set_node(node)
            if (not had or old_labels != ni.labels) and ni.affinity_pods:
                for pi in ni.pods.values():  # the domains their terms cover moved
                    self._unindex(pi)
                    self._index(pi, ni)
        self._list = None
        return ni

    update_node = add_node

    def remove_node(self, node: Obj) -> None:
        name = node["metadata"]["name"]
        ni = self.nodes.get(name)
        if ni is None:
            return
        if ni.pods:  # keep the pods counted until they go away, like upstream
            ni.node = None
        else:
            del self.nodes[name]
        self._list = None

    def node_infos(self) -> list[NodeInfo]:
        """Nodes that exist (in a stable order, for round-robin starts)."""
        if self._list is None:
            self._list = [ni for ni in self.nodes.values() if ni.node is not None]
            # let plugins whose filter or score cannot tell nodes apart skip the work
            self._any_taints = any(ni.taints for ni in self._list)
            self._any_unschedulable = any(ni.unschedulable for ni in self._list)
        return self._list

    @property
    def any_taints(self) -> bool:
        self.node_infos()
        return self._any_taints

    @property
    def any_unschedulable(self) -> bool:
        self.node_infos()
        return self._any_unschedulable

    # -- pods
    def _add(self, pod: Obj, node: str, pi: Optional[PodInfo] = None) -> None:
        key = pod_key(pod)
        ni = self.nodes.get(node)
        if ni is None:
            ni = self.nodes[node] = NodeInfo(name=node)
        if pi is None or pi.pod is not pod:
            pi = PodInfo(pod)
        ni.add_pod(pi)
        self._index(pi, ni)
        self._pod_node[key] = node

    def _remove(self, key: str) -> None:
        node = self._pod_node.pop(key, None)
        if node is None:
            return
        ni = self.nodes.get(node)
        if ni is not None:
            pi = ni.remove_pod(key)
            if pi is not None:
                self._unindex(pi)
            if ni.node is None and not ni.pods:
                del self.nodes[node]
                self._list = None

    def assume_pod(self, pod: Obj, pi: Optional[PodInfo] = None) -> None:
        """Count `pod` (whose spec.nodeName is the chosen node) before the API knows;
        `pi` is the cycle's PodInfo for it, reused when given."""
        key = pod_key(pod)
        if key in self._pod_node:
            raise ValueError(f"pod {key} is already in the cache")
        self._add(pod, pod["spec"]["nodeName"], pi)
        self.assumed.add(key)
        self._binding.add(key)

    def finish_binding(self, pod: Obj) -> None:
        self._binding.discard(pod_key(pod))

    def forget_pod(self, pod: Obj) -> None:
        key = pod_key(pod)
        if key in self.assumed:
            self.assumed.discard(key)
            self._binding.discard(key)
            self._remove(key)

    def is_assumed(self, pod: Obj) -> bool:
        return pod_key(pod) in self.assumed

    def add_pod(self, pod: Obj) -> None:
        """A pod seen bound through the watch: confirms an assumed pod."""
        key = pod_key(pod)
        self.assumed.discard(key)
        self._binding.discard(key)
        node = pod["spec"]["nodeName"]
        old = self._pod_node.get(key)
        if old == node:
            ni = self.nodes.get(node)
            cur = ni.pods.get(key) if ni is not None else None
            if cur is not None and _same_for_scheduling(cur.pod, pod):
                # the usual confirmation of an assumed pod (or a status-only update):
                # keep the counted PodInfo, just point it at the newer object
                cur.pod = pod
                return
        self._remove(key)
        self._add(pod, node)

    update_pod = add_pod

    def remove_pod(self, pod: Obj) -> None:
        key = pod_key(pod)
        self.assumed.discard(key)
        self._binding.discard(key)
        self._remove(key)

    def pod_count(self) -> int:
        return len(self._pod_node)

    # -- affinity term indexes
    def _index(self, pi: PodInfo, ni: NodeInfo) -> None:
        if not pi.has_affinity or ni.node is None:
            return
        labels = ni.labels
        entries = []
        for idx, terms, sign in ((ANTI, pi.required_anti_affinity, 1),
                                 (SCORE, pi.required_affinity, 0),
                                 (SCORE, pi.preferred_affinity, 1),
                                 (SCORE, pi.preferred_anti_affinity, -1)):
            for t in terms:
                tv = labels.get(t.topology_key)
                if tv is None:
                    continue
                w = 1 if idx == ANTI else (HARD_POD_AFFINITY_WEIGHT if sign == 0 else sign * t.weight)
                if w == 0:
                    continue
                pair = (t.topology_key, tv)
                slot = self.term_index[idx].setdefault(t.key, (t, {}))
                slot[1][pair] = slot[1].get(pair, 0) + w
                entries.append((idx, t.key, pair, w))
        pi.index_entries = entries

    def _unindex(self, pi: PodInfo) -> None:
        for idx, key, pair, w in pi.index_entries:
            slot = self.term_index[idx].get(key)
            if slot is None:
                continue
            n = slot[1].get(pair, 0) - w
            if n:
                slot[1][pair] = n
            else:
                slot[1].pop(pair, None)
                if not slot[1]:
                    del self.term_index[idx][key]
        pi.index_entries = []


def _same_for_scheduling(old: Obj, new: Obj) -> bool:
    """Nothing the cache counts differs: spec (bar nodeName), labels, deletion state."""
    if old is new:
        return True
    om, nm = old.get("metadata") or {}, new.get("metadata") or {}
    if om.get("labels") != nm.get("labels") or bool(om.get("deletionTimestamp")) != bool(nm.get("deletionTimestamp")):
        return False
    os_, ns_ = old.get("spec") or {}, new.get("spec") or {}
    if os_.get("nodeName") != ns_.get("nodeName"):
        return False
    return all(os_.get(k) == ns_.get(k) for k in ("containers", "initContainers", "overhead", "affinity", "priority"))
