"""The scheduler's in-memory view of nodes and the pods on them (upstream
pkg/scheduler/backend/cache).  A pod the scheduler has decided on but not yet seen bound
through the watch is *assumed*: it already counts against its node so that the next
decision never waits on the API, and is forgotten if binding fails."""

from __future__ import annotations

import logging
from typing import Any, Optional

from kybernetes.scheduler.framework import NodeInfo, PodInfo, pod_key

log = logging.getLogger("kybernetes.scheduler.cache")
Obj = dict[str, Any]


class Cache:
    def __init__(self) -> None:
        self.nodes: dict[str, NodeInfo] = {}
        self._pod_node: dict[str, str] = {}    # pod key -> node name, for every counted pod
        self.assumed: set[str] = set()
        self._binding: set[str] = set()        # assumed pods whose bind call is in flight
        self._list: Optional[list[NodeInfo]] = None

    # -- nodes
    def add_node(self, node: Obj) -> NodeInfo:
        name = node["metadata"]["name"]
        ni = self.nodes.get(name)
        if ni is None:
            ni = self.nodes[name] = NodeInfo(node)
        else:
            ni.set_node(node)
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
        return self._list

    # -- pods
    def _add(self, pod: Obj, node: str) -> None:
        key = pod_key(pod)
        ni = self.nodes.get(node)
        if ni is None:
            ni = self.nodes[node] = NodeInfo(name=node)
        ni.add_pod(PodInfo(pod))
        self._pod_node[key] = node

    def _remove(self, key: str) -> None:
        node = self._pod_node.pop(key, None)
        if node is None:
            return
        ni = self.nodes.get(node)
        if ni is not None:
            ni.remove_pod(key)
            if ni.node is None and not ni.pods:
                del self.nodes[node]
                self._list = None

    def assume_pod(self, pod: Obj) -> None:
        """Count `pod` (whose spec.nodeName is the chosen node) before the API knows."""
        key = pod_key(pod)
        if key in self._pod_node:
            raise ValueError(f"pod {key} is already in the cache")
        self._add(pod, pod["spec"]["nodeName"])
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
        self._remove(key)
        self._add(pod, pod["spec"]["nodeName"])

    update_pod = add_pod

    def remove_pod(self, pod: Obj) -> None:
        key = pod_key(pod)
        self.assumed.discard(key)
        self._binding.discard(key)
        self._remove(key)

    def pod_count(self) -> int:
        return len(self._pod_node)
