"""Node lifecycle (upstream pkg/controller/nodelifecycle) and taint-based eviction
(upstream pkg/controller/tainteviction).

NodeLifecycleController: a node's heartbeat is its Lease in kube-node-lease (or its Ready
condition's lastHeartbeatTime); the controller notes *when it saw* each renewal on its
own clock, as upstream does.  With no heartbeat for `grace_period` (upstream
--node-monitor-grace-period, 40 s; `startup_grace_period` for nodes that never reported)
every node condition goes Unknown ("Kubelet stopped posting node status.").  Taints
follow the Ready condition: False -> node.kubernetes.io/not-ready, Unknown ->
node.kubernetes.io/unreachable, each NoExecute and NoSchedule; Ready again removes them.
MemoryPressure/DiskPressure/PIDPressure/NetworkUnavailable True add the matching
node.kubernetes.io/... NoSchedule taint (TaintNodesByCondition), removed when they clear.
Adding NoExecute taints is rate limited (upstream --node-eviction-rate, 0.1 nodes/s).
Pods on a node that went Unknown get Ready=False.  No polling: each node is requeued
for the moment its grace period runs out.

TaintEvictionController: pods on nodes with NoExecute taints they do not tolerate are
deleted at once; tolerated ones with tolerationSeconds are deleted when that much time
has passed since the taint's timeAdded; tolerations without tolerationSeconds keep the
pod forever.
"""

from __future__ import annotations

import copy
import time
from datetime import datetime, timezone
from typing import Any, Callable, Optional

from kybernetes.client.errors import Conflict, NotFound
from kybernetes.client.informer import object_key
from kybernetes.controllers._pods import now_rfc3339, parse_time
from kybernetes.controllers.base import Controller, Requeue

Obj = dict[str, Any]

NOT_READY = "node.kubernetes.io/not-ready"
UNREACHABLE = "node.kubernetes.io/unreachable"
# NoSchedule taints that mirror node conditions (upstream doNoScheduleTaintingPass);
# the not-ready/unreachable ones for Ready are handled with their NoExecute twins
CONDITION_TAINTS = {("MemoryPressure", "True"): "node.kubernetes.io/memory-pressure",
                    ("DiskPressure", "True"): "node.kubernetes.io/disk-pressure",
                    ("PIDPressure", "True"): "node.kubernetes.io/pid-pressure",
                    ("NetworkUnavailable", "True"): "node.kubernetes.io/network-unavailable"}
NODE_MONITOR_GRACE_PERIOD = 40.0
NODE_STARTUP_GRACE_PERIOD = 60.0
NODE_EVICTION_RATE = 0.1  # nodes tainted NoExecute per second
NODE_LEASE_NS = "kube-node-lease"
NODE_NAME_INDEX = "spec.nodeName"


def _ready(node: Obj) -> Optional[Obj]:
    return next((c for c in (node.get("status") or {}).get("conditions") or [] if c.get("type") == "Ready"), None)


def _node_index(pod: Obj) -> list[str]:
    n = (pod.get("spec") or {}).get("nodeName")
    return [n] if n else []


def desired_taints(node: Obj, now: Optional[str] = None) -> list[Obj]:
    """The node's taints with the not-ready/unreachable ones made to match its Ready
    condition and the NoSchedule ones of CONDITION_TAINTS to match the pressure
    conditions (other taints untouched; an existing taint keeps its timeAdded)."""
    cond = _ready(node)
    status = cond.get("status") if cond else "Unknown"
    want_key = {"False": NOT_READY, "Unknown": UNREACHABLE}.get(status or "Unknown")
    current = list((node.get("spec") or {}).get("taints") or [])
    out = [t for t in current if t.get("key") not in (NOT_READY, UNREACHABLE) or t.get("key") == want_key]
    if want_key is not None:
        for effect in ("NoSchedule", "NoExecute"):
            if not any(t.get("key") == want_key and t.get("effect") == effect for t in out):
                t: Obj = {"key": want_key, "effect": effect}
                if effect == "NoExecute":
                    t["timeAdded"] = now or now_rfc3339()
                out.append(t)
    conds = {c.get("type"): c.get("status") for c in (node.get("status") or {}).get("conditions") or []}
    want_cond = {key for (ctype, status), key in CONDITION_TAINTS.items() if conds.get(ctype) == status}
    out = [t for t in out if t.get("key") not in CONDITION_TAINTS.values() or t.get("effect") != "NoSchedule"
           or t.get("key") in want_cond]
    for (ctype, status), key in CONDITION_TAINTS.items():
        if key in want_cond and not any(t.get("key") == key and t.get("effect") == "NoSchedule" for t in out):
            out.append({"key": key, "effect": "NoSchedule"})
    return out


def tolerates(toleration: Obj, taint: Obj) -> bool:
    """Upstream Toleration.ToleratesTaint."""
    if toleration.get("effect") and toleration["effect"] != taint.get("effect"):
        return False
    if toleration.get("key") and toleration["key"] != taint.get("key"):
        return False
    op = toleration.get("operator") or "Equal"
    if op == "Exists":
        return True
    if not toleration.get("key") and op == "Equal":
        return False
    return (toleration.get("value") or "") == (taint.get("value") or "")


def eviction_time(pod: Obj, taints: list[Obj]) -> Optional[float]:
    """When (epoch seconds) the pod must go because of the node's NoExecute taints: 0 for
    at once, None for never."""
    tolerations = (pod.get("spec") or {}).get("tolerations") or []
    when: Optional[float] = None
    for taint in taints:
        if taint.get("effect") != "NoExecute":
            continue
        matching = [t for t in tolerations if tolerates(t, taint)]
        if not matching:
            return 0.0
        secs = [t["tolerationSeconds"] for t in matching if t.get("tolerationSeconds") is not None]
        if not secs:
            continue  # tolerated forever
        added = parse_time(taint.get("timeAdded")) or time.time()
        t_evict = added + max(0, min(int(s) for s in secs))
        when = t_evict if when is None else min(when, t_evict)
    return when


class TokenBucket:
    def __init__(self, qps: float, burst: int = 1, clock: Callable[[], float] = time.monotonic) -> None:
        self.qps, self.burst, self.clock = qps, burst, clock
        self.tokens = float(burst)
        self.last = clock()

    def try_take(self) -> float:
        """0 when a token was taken, else seconds until one is available."""
        now = self.clock()
        self.tokens = min(float(self.burst), self.tokens + (now - self.last) * self.qps)
        self.last = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.qps if self.qps > 0 else 3600.0


class NodeLifecycleController(Controller):
    name = "nodelifecycle"
    event_source = "node-controller"
    workers = 2

    def __init__(self, client: Any, informers: Any = None, *, grace_period: float = NODE_MONITOR_GRACE_PERIOD,
                 startup_grace_period: float = NODE_STARTUP_GRACE_PERIOD, eviction_rate: float = NODE_EVICTION_RATE,
                 eviction_burst: int = 1, clock: Callable[[], float] = time.monotonic, **kw: Any) -> None:
        self.grace_period = grace_period
        self.startup_grace_period = startup_grace_period
        self.clock = clock
        self.limiter = TokenBucket(eviction_rate, eviction_burst, clock)
        self._probe: dict[str, float] = {}       # node -> local time the last heartbeat was seen
        self._heartbeat: dict[str, tuple] = {}   # node -> (lease renewTime, ready lastHeartbeatTime)
        super().__init__(client, informers, **kw)

    def setup(self) -> None:
        self.nodes = self.watch("", "v1", "nodes")
        self.leases = self.watch("coordination.k8s.io", "v1", "leases", namespace=NODE_LEASE_NS,
                                 enqueue=lambda l: l["metadata"]["name"])
        self.pods = self.watch("", "v1", "pods", enqueue=None)
        self.pods.store.add_index(NODE_NAME_INDEX, _node_index)
        self.nodes_api = self.resource("", "v1", "nodes")
        self.pods_api = self.resource("", "v1", "pods")

    def _observe(self, name: str, node: Obj) -> float:
        """The local time the node's latest heartbeat was first seen."""
        lease = self.leases.get(f"{NODE_LEASE_NS}/{name}")
        beat = (((lease or {}).get("spec") or {}).get("renewTime"), (_ready(node) or {}).get("lastHeartbeatTime"))
        if self._heartbeat.get(name) != beat or name not in self._probe:
            self._heartbeat[name] = beat
            self._probe[name] = self.clock()
        return self._probe[name]

    async def reconcile(self, key: str) -> None:
        name = key
        node = self.nodes.get(name)
        if node is None:
            self._probe.pop(name, None)
            self._heartbeat.pop(name, None)
            return
        seen = self._observe(name, node)
        ready = _ready(node)
        grace = self.grace_period if ready is not None else self.startup_grace_period
        left = seen + grace - self.clock()
        if left <= 0 and (ready is None or ready.get("status") != "Unknown"):
            node = await self._mark_unknown(node, never=ready is None)
            if node is None:
                return
            await self._mark_pods_not_ready(name)
        await self._sync_taints(node)
        if left > 0:
            raise Requeue(after=left + 0.01)

    async def _mark_unknown(self, node: Obj, *, never: bool) -> Optional[Obj]:
        body = copy.deepcopy(node)
        now = now_rfc3339()
        reason = "NodeStatusNeverUpdated" if never else "NodeStatusUnknown"
        msg = "Kubelet never posted node status." if never else "Kubelet stopped posting node status."
        conds = body.setdefault("status", {}).setdefault("conditions", [])
        for ctype in ("Ready", "MemoryPressure", "DiskPressure", "PIDPressure"):
            c = next((c for c in conds if c.get("type") == ctype), None)
            if c is None:
                conds.append({"type": ctype, "status": "Unknown", "reason": reason, "message": msg,
                              "lastHeartbeatTime": body["metadata"].get("creationTimestamp"), "lastTransitionTime": now})
            elif c.get("status") != "Unknown":
                c.update(status="Unknown", reason=reason, message=msg, lastTransitionTime=now)
        try:
            updated = await self.nodes_api.update_status(body)
        except NotFound:
            return None
        except Conflict:
            raise Requeue(reason=f"{node['metadata']['name']}: node changed") from None
        self.log.info("node %s: Ready=Unknown (%s)", node["metadata"]["name"], msg)
        name = node["metadata"]["name"]
        # upstream RecordNodeStatusChange: the reference carries the node's name as its uid
        self.recorder.event({"apiVersion": "v1", "kind": "Node", "name": name, "uid": name}, "Normal", "NodeNotReady",
                            f"Node {name} status is now: NodeNotReady", action="StatusChange")
        return updated

    async def _mark_pods_not_ready(self, node_name: str) -> None:
        now = now_rfc3339()
        for pod in self.pods.store.by_index(NODE_NAME_INDEX, node_name):
            if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
                continue
            conds = (pod.get("status") or {}).get("conditions") or []
            if not any(c.get("type") == "Ready" and c.get("status") == "True" for c in conds):
                continue
            patch = {"status": {"conditions": [{"type": "Ready", "status": "False", "reason": "NodeNotReady",
                                                "lastTransitionTime": now, "message": ""}]}}
            try:
                await self.pods_api.patch(pod["metadata"]["name"], patch, "strategic",
                                          namespace=pod["metadata"]["namespace"], subresource="status")
            except NotFound:
                continue
            self.recorder.event(pod, "Warning", "NodeNotReady", "Node is not ready", action="MarkNotReady")

    async def _sync_taints(self, node: Obj) -> None:
        current = (node.get("spec") or {}).get("taints") or []
        want = desired_taints(node)
        if want == current:
            return
        added_noexec = any(t.get("effect") == "NoExecute" and t not in current for t in want)
        if added_noexec:
            wait = self.limiter.try_take()
            if wait > 0:
                raise Requeue(after=wait)
        body = copy.deepcopy(node)
        body.setdefault("spec", {})["taints"] = want
        if not want:
            body["spec"].pop("taints", None)
        try:
            await self.nodes_api.update(body)
        except NotFound:
            return
        except Conflict:
            raise Requeue(reason=f"{node['metadata']['name']}: node changed") from None
        self.log.info("node %s: taints now %s", node["metadata"]["name"],
                      [f"{t['key']}:{t['effect']}" for t in want])


class TaintEvictionController(Controller):
    name = "taint-eviction-controller"
    event_source = "taint-eviction-controller"
    workers = 4

    def __init__(self, client: Any, informers: Any = None, *, clock: Callable[[], float] = time.time, **kw: Any) -> None:
        self.clock = clock
        super().__init__(client, informers, **kw)

    def setup(self) -> None:
        self.pods = self.watch("", "v1", "pods", enqueue=lambda p: object_key(p) if _node_index(p) else None)
        self.pods.store.add_index(NODE_NAME_INDEX, _node_index)
        self.nodes = self.watch("", "v1", "nodes", enqueue=None)
        self.nodes.add_handlers(on_add=self._node_changed, on_update=lambda o, n: self._node_changed(n, o),
                                on_delete=self._node_changed)
        self.pods_api = self.resource("", "v1", "pods")

    def _node_changed(self, node: Obj, old: Optional[Obj] = None) -> None:
        if old is not None and (old.get("spec") or {}).get("taints") == (node.get("spec") or {}).get("taints"):
            return
        for pod in self.pods.store.by_index(NODE_NAME_INDEX, node["metadata"]["name"]):
            self.enqueue(object_key(pod))

    async def reconcile(self, key: str) -> None:
        pod = self.pods.get(key)
        if pod is None or pod["metadata"].get("deletionTimestamp"):
            return
        if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            return
        node = self.nodes.get(pod["spec"].get("nodeName") or "")
        if node is None:
            return
        taints = [t for t in (node.get("spec") or {}).get("taints") or [] if t.get("effect") == "NoExecute"]
        if not taints:
            return
        when = eviction_time(pod, taints)
        if when is None:
            return
        left = when - self.clock()
        if left > 0:
            raise Requeue(after=left + 0.01)
        ns, name = pod["metadata"]["namespace"], pod["metadata"]["name"]
        cond = {"status": {"conditions": [{"type": "DisruptionTarget", "status": "True", "reason": "DeletionByTaintManager",
                                           "message": "Taint manager: deleting due to NoExecute taint",
                                           "lastTransitionTime": now_rfc3339()}]}}
        self.recorder.event(pod, "Normal", "TaintManagerEviction", f"Marking for deletion Pod {key}", action="Delete")
        try:
            await self.pods_api.patch(name, cond, "strategic", namespace=ns, subresource="status")
            await self.pods_api.delete(name, ns, preconditions={"uid": pod["metadata"]["uid"]})
        except (NotFound, Conflict):
            return
        self.log.info("evicted pod %s from tainted node %s", key, node["metadata"]["name"])


def utc(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
