"""Simulated nodes, for scale and scheduler/controller tests only (like kwok): Node objects
with capacity and a Ready condition whose Leases in kube-node-lease are kept renewed, and,
optionally, a fake kubelet that marks pods bound to them Running.  No containers run."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import zlib
from datetime import datetime, timezone
from typing import Any, Mapping, Optional, Sequence

from kybernetes.client import AlreadyExists, Client, Conflict, Informer, NotFound

log = logging.getLogger("kybernetes.simnodes")
Obj = dict[str, Any]

LEASE_DURATION = 40
ZONE_LABEL = "topology.kubernetes.io/zone"
RENEW_INTERVAL = 10.0
RENEW_CONCURRENCY = 64  # leases renewed at once (each simulated kubelet renews on its own)


def _now(micro: bool = False) -> str:
    t = datetime.now(timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ") if micro else t.strftime("%Y-%m-%dT%H:%M:%SZ")


_HEALTHY = {"MemoryPressure": "False", "DiskPressure": "False", "PIDPressure": "False", "Ready": "True"}


def _node_conditions(now: str) -> list[Obj]:
    """What a healthy kubelet reports."""
    conds = [{"type": t, "status": "False", "reason": r, "message": m, "lastHeartbeatTime": now, "lastTransitionTime": now}
             for t, r, m in (("MemoryPressure", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
                             ("DiskPressure", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
                             ("PIDPressure", "KubeletHasSufficientPID", "kubelet has sufficient PID available"))]
    conds.append({"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "simulated node is ready",
                  "lastHeartbeatTime": now, "lastTransitionTime": now})
    return conds


def pod_cidr_for(index: int) -> ipaddress.IPv4Network:
    """The simulated node's pod CIDR: one /24 per node out of 10.128.0.0/9, distinct for up
    to 32,768 nodes (outside the cluster CIDR 10.42.0.0/16 and the service CIDR)."""
    return ipaddress.ip_network((int(ipaddress.ip_address("10.128.0.0")) + (index % 32768) * 256, 24))


def node_object(name: str, index: int, *, cpu: str = "4", memory: str = "8Gi", pods: str = "110",
                extended: Optional[Mapping[str, str]] = None, labels: Optional[Mapping[str, str]] = None,
                taints: Sequence[Obj] = (), zones: int = 0) -> Obj:
    cap = {"cpu": cpu, "memory": memory, "pods": str(pods), "ephemeral-storage": "100Gi", **(extended or {})}
    now = _now()
    pod_cidr = str(pod_cidr_for(index))
    conds = _node_conditions(now)
    return {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
                                              "kubernetes.io/arch": "amd64", "type": "kybernetes-sim",
                                              **({ZONE_LABEL: f"zone-{index % zones}"} if zones else {}),
                                              **(labels or {})},
                     "annotations": {"kybernetes.io/simulated": "true"}},
        "spec": {"podCIDR": pod_cidr, "podCIDRs": [pod_cidr], **({"taints": list(taints)} if taints else {})},
        "status": {"capacity": cap, "allocatable": dict(cap), "conditions": conds,
                   "addresses": [{"type": "InternalIP", "address": f"127.1.{index // 250}.{index % 250 + 1}"},
                                 {"type": "Hostname", "address": name}],
                   "nodeInfo": {"kubeletVersion": "v1.37.0-kyb-sim", "operatingSystem": "linux", "architecture": "amd64",
                                "containerRuntimeVersion": "sim://0", "kernelVersion": "", "osImage": "simulated",
                                "kubeProxyVersion": "", "machineID": "", "systemUUID": "", "bootID": ""},
                   "phase": "Running"},
    }


FAIL_ANNOTATION = "sim.kybernetes.io/fail"   # value: the failure message; the pod ends Failed
NODE_STATUS_INTERVAL = 300.0                  # as the kubelet's nodeStatusReportFrequency
_STANDARD = frozenset({"cpu", "memory", "pods", "ephemeral-storage"})
_TERMINAL = ("Succeeded", "Failed")


def _pod_ready(pod: Obj) -> bool:
    return all(c.get("status") == "True" for c in (pod.get("status") or {}).get("conditions") or []
               if c.get("type") in ("Ready", "ContainersReady"))


def merged_status(ours: Obj, existing: Optional[Obj]) -> Obj:
    """Our node status, keeping capacity/allocatable entries we do not manage that are
    already on the node (extended resources an admin patched in), as the kubelet does."""
    out = dict(ours)
    for field in ("capacity", "allocatable"):
        have = ((existing or {}).get("status") or {}).get(field) or {}
        extra = {k: v for k, v in have.items() if k not in _STANDARD and k not in out[field]}
        if extra:
            out[field] = {**out[field], **extra}
    return out


class SimNodes:
    """N simulated nodes.  With run_pods, plays their kubelet for pods bound to them:
    Pending -> Running (ready, with an IP from the node's CIDR); a pod annotated
    `sim.kybernetes.io/fail` ends Failed instead; a pod being deleted is removed once its
    grace period has passed; a pod that reached Succeeded or Failed is never written again.
    Like a kubelet's status sync, it puts back what someone else denied: a running pod
    marked not ready gets Ready again, and a node marked Unknown reports Ready again."""

    def __init__(self, client: Client, count: int, *, prefix: str = "sim-node-", run_pods: bool = False,
                 renew_interval: float = RENEW_INTERVAL, node_status_interval: float = NODE_STATUS_INTERVAL,
                 **node_kwargs: Any) -> None:
        self.client = client
        self.names = [f"{prefix}{i:04d}" for i in range(count)]
        self._index = {n: i for i, n in enumerate(self.names)}
        self.node_kwargs = node_kwargs
        self.run_pods = run_pods
        self.renew_interval = renew_interval
        self.node_status_interval = node_status_interval
        self.nodes = client.resource("", "v1", "nodes")
        self.leases = client.resource("coordination.k8s.io", "v1", "leases")
        self.pods = client.resource("", "v1", "pods")
        self._tasks: set[asyncio.Task[Any]] = set()
        self._pod_informer: Optional[Informer] = None
        self._inflight: set[str] = set()
        self._deleting: dict[str, asyncio.TimerHandle] = {}
        self._node_informer: Optional[Informer] = None
        self._reasserting: set[str] = set()

    async def register(self, concurrency: int = 32) -> None:
        sem = asyncio.Semaphore(concurrency)

        async def one(i: int, name: str) -> None:
            async with sem:
                obj = node_object(name, i, **self.node_kwargs)
                status = obj["status"]
                try:
                    created = await self.nodes.create(obj)
                except AlreadyExists:
                    created = await self.nodes.get(name)
                # status is not settable on create: write it through the status subresource
                created["status"] = merged_status(status, created)
                await self.nodes.update(created, subresource="status")
                await self._renew(name)

        await asyncio.gather(*(one(i, n) for i, n in enumerate(self.names)))

    async def heartbeat(self, name: str, *, transition: bool = False) -> None:
        """Post the node's conditions (only them: capacity an admin patched stays), as the
        kubelet does: Ready True and no pressure.  `transition` when they changed (the
        node lifecycle controller had set them Unknown): their lastTransitionTime moves."""
        now = _now()
        conds = [{k: v for k, v in c.items() if transition or k != "lastTransitionTime"}
                 for c in _node_conditions(now)]
        await self.nodes.patch(name, {"status": {"conditions": conds}}, "strategic", subresource="status")

    def _node_seen(self, node: Obj) -> None:
        name = node["metadata"]["name"]
        if name not in self._index or name in self._reasserting:
            return
        if all(c.get("status") == _HEALTHY.get(c.get("type"), c.get("status"))
               for c in (node.get("status") or {}).get("conditions") or []):
            return
        # someone (the node lifecycle controller, on a late lease) says this node is not
        # healthy: the kubelet reports its real state at its next status update
        self._reasserting.add(name)
        self._spawn(self._reassert(name))

    async def _reassert(self, name: str) -> None:
        try:
            await self._renew(name)
            await self.heartbeat(name, transition=True)
        except NotFound:
            pass
        except Exception as e:  # noqa: BLE001
            log.warning("sim-nodes: reporting %s ready: %s", name, e)
        finally:
            self._reasserting.discard(name)

    async def _renew(self, name: str) -> None:
        body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": name, "namespace": "kube-node-lease"},
                "spec": {"holderIdentity": name, "leaseDurationSeconds": LEASE_DURATION, "renewTime": _now(True)}}
        try:
            await self.leases.patch(name, {"spec": body["spec"]}, "merge", namespace="kube-node-lease")
        except NotFound:
            try:
                await self.leases.create(body, namespace="kube-node-lease")
            except AlreadyExists:
                pass

    async def _renew_loop(self) -> None:
        loop = asyncio.get_running_loop()
        next_status = loop.time() + self.node_status_interval
        sem = asyncio.Semaphore(RENEW_CONCURRENCY)

        async def one(name: str, status_due: bool) -> None:
            async with sem:
                try:
                    await self._renew(name)
                    if status_due:
                        await self.heartbeat(name)
                except Exception as e:  # noqa: BLE001
                    log.warning("sim-nodes: renewing %s: %s", name, e)

        started = loop.time()
        while True:
            # a fixed cadence, however long a round took: kubelets renew independently, so
            # one slow answer must not make every later node's lease late
            await asyncio.sleep(max(0.0, started + self.renew_interval - loop.time()))
            started = loop.time()
            status_due = started >= next_status
            if status_due:
                next_status = started + self.node_status_interval
            await asyncio.gather(*(one(name, status_due) for name in self.names))

    def _spawn(self, coro) -> None:
        t = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(t)
        t.add_done_callback(self._tasks.discard)

    async def start(self) -> None:
        await self.register()
        self._spawn(self._renew_loop())
        ninf = self._node_informer = Informer(self.nodes, name="sim-nodes nodes")
        ninf.add_handlers(on_add=self._node_seen, on_update=lambda old, new: self._node_seen(new))
        ninf.start()
        await ninf.wait_synced(60)
        if self.run_pods:
            inf = self._pod_informer = Informer(self.pods, name="sim-nodes pods")
            inf.add_handlers(on_add=self._seen, on_update=lambda old, new: self._seen(new),
                             on_delete=self._gone)
            inf.start()
            await inf.wait_synced(60)

    # -- the fake kubelet
    def _seen(self, pod: Obj) -> None:
        node = (pod.get("spec") or {}).get("nodeName")
        if node not in self._index:
            return
        meta = pod["metadata"]
        key = f"{meta['namespace']}/{meta['name']}"
        phase = (pod.get("status") or {}).get("phase") or "Pending"
        if meta.get("deletionTimestamp"):
            if key not in self._deleting:
                grace = 0 if phase in _TERMINAL else int(meta.get("deletionGracePeriodSeconds") or 0)
                self._deleting[key] = asyncio.get_running_loop().call_later(
                    grace, lambda: self._spawn(self._finish_delete(pod, key)))
            return
        if phase in _TERMINAL or key in self._inflight:
            return  # a terminal pod is never written again
        fail = (meta.get("annotations") or {}).get(FAIL_ANNOTATION)
        if fail is not None:
            self._inflight.add(key)
            self._spawn(self._write(pod, key, self._failed_status(pod, fail)))
        elif phase == "Pending":
            self._inflight.add(key)
            self._spawn(self._write(pod, key, self._running_status(pod, key)))
        elif phase == "Running" and not _pod_ready(pod):
            # marked not ready by someone else (the node lifecycle controller, while our
            # lease was late): the kubelet's status sync puts back what it knows
            self._inflight.add(key)
            self._spawn(self._write(pod, key, self._ready_again_status()))

    def _gone(self, pod: Obj) -> None:
        meta = pod["metadata"]
        h = self._deleting.pop(f"{meta.get('namespace')}/{meta.get('name')}", None)
        if h is not None:
            h.cancel()

    async def _finish_delete(self, pod: Obj, key: str) -> None:
        """The kubelet's last word on a deleted pod: remove it for good (grace 0)."""
        meta = pod["metadata"]
        try:
            await self.pods.delete(meta["name"], namespace=meta["namespace"], grace_period_seconds=0,
                                   preconditions={"uid": meta["uid"]} if meta.get("uid") else None)
        except NotFound:
            pass
        except Exception as e:  # noqa: BLE001
            log.warning("sim-nodes: deleting %s: %s", key, e)
        finally:
            self._deleting.pop(key, None)

    def _running_status(self, pod: Obj, key: str) -> Obj:
        meta = pod["metadata"]
        now = _now()
        idx = self._index[pod["spec"]["nodeName"]]
        ip = str(pod_cidr_for(idx).network_address + (zlib.crc32(key.encode()) % 250) + 2)
        statuses = [{"name": c["name"], "image": c.get("image", ""), "imageID": "", "ready": True, "restartCount": 0,
                     "started": True, "containerID": f"sim://{meta.get('uid', '')}-{c['name']}",
                     "state": {"running": {"startedAt": now}}} for c in pod["spec"].get("containers") or []]
        conds = [{"type": t, "status": "True", "lastProbeTime": None, "lastTransitionTime": now}
                 for t in ("PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled")]
        return {"phase": "Running", "conditions": conds, "hostIP": "127.0.0.1", "podIP": ip,
                "podIPs": [{"ip": ip}], "startTime": now, "containerStatuses": statuses}

    @staticmethod
    def _ready_again_status() -> Obj:
        now = _now()
        return {"conditions": [{"type": t, "status": "True", "reason": None, "message": None,
                                "lastProbeTime": None, "lastTransitionTime": now} for t in ("Ready", "ContainersReady")]}

    def _failed_status(self, pod: Obj, message: str) -> Obj:
        meta = pod["metadata"]
        now = _now()
        started = (pod.get("status") or {}).get("startTime") or now
        statuses = [{"name": c["name"], "image": c.get("image", ""), "imageID": "", "ready": False, "restartCount": 0,
                     "started": False, "containerID": f"sim://{meta.get('uid', '')}-{c['name']}",
                     "state": {"terminated": {"exitCode": 1, "reason": "Error", "message": message,
                                              "startedAt": started, "finishedAt": now}}}
                    for c in pod["spec"].get("containers") or []]
        conds = [{"type": t, "status": "False", "reason": "PodFailed", "lastProbeTime": None, "lastTransitionTime": now}
                 for t in ("Ready", "ContainersReady")]
        return {"phase": "Failed", "reason": "Error", "message": message, "conditions": conds,
                "startTime": started, "containerStatuses": statuses}

    async def _write(self, pod: Obj, key: str, status: Obj) -> None:
        meta = pod["metadata"]
        # pinned to the version judged: a pod that changed meanwhile (deleted, or ended by
        # someone else) is not overwritten; its update event brings it back here
        body = {"metadata": {"resourceVersion": meta.get("resourceVersion")}, "status": status}
        retry = False
        try:
            await self.pods.patch(meta["name"], body, "strategic", namespace=meta["namespace"], subresource="status")
        except NotFound:
            pass
        except Conflict:
            retry = True  # its newer version may have arrived while we were busy: judge again
        except Exception as e:  # noqa: BLE001
            log.warning("sim-nodes: writing status of %s: %s", key, e)
        finally:
            self._inflight.discard(key)
        if retry:
            try:
                self._seen(await self.pods.get(meta["name"], namespace=meta["namespace"]))
            except NotFound:
                pass

    async def stop(self, *, delete: bool = False) -> None:
        for h in self._deleting.values():
            h.cancel()
        self._deleting.clear()
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for inf in (self._pod_informer, self._node_informer):
            if inf is not None:
                await inf.stop()
        if delete:
            for name in self.names:
                for h, ns in ((self.nodes, None), (self.leases, "kube-node-lease")):
                    try:
                        await h.delete(name, namespace=ns)
                    except NotFound:
                        pass
