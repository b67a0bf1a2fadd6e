"""Pod garbage collection (upstream pkg/controller/podgc), every deletion with grace 0:

- terminated pods (Succeeded/Failed) beyond `terminated_pod_threshold` (upstream
  --terminated-pod-gc-threshold, 12500; 0 disables), oldest first;
- orphaned pods: bound to a node that no longer exists — after the node has been missing
  for `quarantine` seconds (upstream 40 s) and the API confirms it is gone; a pod not yet
  terminal is first marked Failed with a DisruptionTarget condition (DeletionByPodGC);
- unscheduled terminating pods (deletionTimestamp set, no nodeName);
- terminating pods on not-ready nodes tainted node.kubernetes.io/out-of-service.

Event driven: pod and node events enqueue the pods concerned; the quarantine is a
requeue at the moment it ends.
"""

from __future__ import annotations

import time
from typing import Any, Callable

from kybernetes.client.errors import Conflict, NotFound
from kybernetes.client.informer import object_key
from kybernetes.controllers._pods import now_rfc3339, parse_time
from kybernetes.controllers.base import Controller, Requeue

Obj = dict[str, Any]

TERMINATED_POD_GC_THRESHOLD = 12500
ORPHAN_QUARANTINE = 40.0
OUT_OF_SERVICE = "node.kubernetes.io/out-of-service"
TERMINATED_KEY = "\x00terminated"  # the one key for the threshold pass
NODE_NAME_INDEX = "spec.nodeName"


def _terminal(pod: Obj) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


class PodGCController(Controller):
    name = "podgc"
    workers = 2

    def __init__(self, client: Any, informers: Any = None, *, terminated_pod_threshold: int = TERMINATED_POD_GC_THRESHOLD,
                 quarantine: float = ORPHAN_QUARANTINE, clock: Callable[[], float] = time.monotonic, **kw: Any) -> None:
        self.threshold = terminated_pod_threshold
        self.quarantine = quarantine
        self.clock = clock
        self._missing_since: dict[str, float] = {}  # node name -> when first seen missing
        super().__init__(client, informers, **kw)

    def setup(self) -> None:
        self.pods = self.watch("", "v1", "pods", enqueue=self._pod_key)
        self.pods.store.add_index(NODE_NAME_INDEX, lambda p: [(p.get("spec") or {}).get("nodeName")]
                                  if (p.get("spec") or {}).get("nodeName") else [])
        self.nodes = self.watch("", "v1", "nodes", enqueue=None)
        self.nodes.add_handlers(on_add=self._node_changed, on_update=lambda o, n: self._node_changed(n),
                                on_delete=self._node_changed)
        self.pods_api = self.resource("", "v1", "pods")
        self.nodes_api = self.resource("", "v1", "nodes")
        self._terminated = 0

    def _pod_key(self, pod: Obj) -> str:
        if _terminal(pod) and self.threshold > 0:
            self.enqueue(TERMINATED_KEY)
        return object_key(pod)

    def _node_changed(self, node: Obj) -> None:
        for pod in self.pods.store.by_index(NODE_NAME_INDEX, node["metadata"]["name"]):
            self.enqueue(object_key(pod))

    async def _force_delete(self, pod: Obj) -> None:
        try:
            await self.pods_api.delete(pod["metadata"]["name"], pod["metadata"]["namespace"], grace_period_seconds=0,
                                       preconditions={"uid": pod["metadata"]["uid"]})
        except (NotFound, Conflict):
            pass

    async def reconcile(self, key: str) -> None:
        if key == TERMINATED_KEY:
            await self._gc_terminated()
            return
        pod = self.pods.get(key)
        if pod is None:
            return
        meta, spec = pod["metadata"], pod.get("spec") or {}
        node_name = spec.get("nodeName")
        if not node_name:
            if meta.get("deletionTimestamp"):
                self.log.info("deleting unscheduled terminating pod %s", key)
                await self._force_delete(pod)
            return
        node = self.nodes.get(node_name)
        if node is None:
            await self._gc_orphan(pod, node_name)
            return
        self._missing_since.pop(node_name, None)
        if meta.get("deletionTimestamp") and any(t.get("key") == OUT_OF_SERVICE and t.get("effect") == "NoExecute"
                                                 for t in (node.get("spec") or {}).get("taints") or []):
            ready = next((c for c in (node.get("status") or {}).get("conditions") or [] if c.get("type") == "Ready"), None)
            if not ready or ready.get("status") != "True":
                self.log.info("deleting terminating pod %s on out-of-service node %s", key, node_name)
                await self._force_delete(pod)

    async def _gc_orphan(self, pod: Obj, node_name: str) -> None:
        now = self.clock()
        since = self._missing_since.setdefault(node_name, now)
        left = since + self.quarantine - now
        if left > 0:
            raise Requeue(after=left + 0.01)
        try:
            await self.nodes_api.get(node_name)
            self._missing_since.pop(node_name, None)
            return  # the node exists after all; the cache is behind
        except NotFound:
            pass
        if not _terminal(pod):
            patch = {"status": {"phase": "Failed", "conditions": [
                {"type": "DisruptionTarget", "status": "True", "reason": "DeletionByPodGC",
                 "message": "PodGC: node no longer exists", "lastTransitionTime": now_rfc3339()}]}}
            try:
                await self.pods_api.patch(pod["metadata"]["name"], patch, "strategic",
                                          namespace=pod["metadata"]["namespace"], subresource="status")
            except NotFound:
                return
            except Exception as e:  # noqa: BLE001 - the delete below is what matters
                self.log.warning("marking orphan pod %s failed: %s", object_key(pod), e)
        self.log.info("deleting orphaned pod %s (node %s is gone)", object_key(pod), node_name)
        await self._force_delete(pod)

    async def _gc_terminated(self) -> None:
        if self.threshold <= 0:
            return
        terminated = [p for p in self.pods.list() if _terminal(p) and not p["metadata"].get("deletionTimestamp")]
        excess = len(terminated) - self.threshold
        if excess <= 0:
            return
        terminated.sort(key=lambda p: (parse_time(p["metadata"].get("creationTimestamp")) or 0.0, p["metadata"]["name"]))
        self.log.info("deleting %d terminated pods over the threshold %d", excess, self.threshold)
        for pod in terminated[:excess]:
            await self._force_delete(pod)
