"""Simulated nodes, for scale and scheduler/controller tests only (like kwok): Node objects
with capacity and a Ready condition whose Leases in kube-node-lease are kept renewed, and,
optionally, a fake kubelet that marks pods bound to them Running.  No containers run."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from datetime import datetime, timezone
from typing import Any, Mapping, Optional, Sequence

from kybernetes.client import AlreadyExists, Client, Informer, NotFound

log = logging.getLogger("kybernetes.simnodes")
Obj = dict[str, Any]

LEASE_DURATION = 40
RENEW_INTERVAL = 10.0


def _now(micro: bool = False) -> str:
    t = datetime.now(timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ") if micro else t.strftime("%Y-%m-%dT%H:%M:%SZ")


def node_object(name: str, index: int, *, cpu: str = "4", memory: str = "8Gi", pods: str = "110",
                extended: Optional[Mapping[str, str]] = None, labels: Optional[Mapping[str, str]] = None,
                taints: Sequence[Obj] = ()) -> Obj:
    cap = {"cpu": cpu, "memory": memory, "pods": str(pods), "ephemeral-storage": "100Gi", **(extended or {})}
    now = _now()
    cidr = ipaddress.ip_network("10.244.0.0/16").subnets(new_prefix=24)
    pod_cidr = str(next(c for i, c in enumerate(cidr) if i == index % 256))
    conds = [{"type": t, "status": "False", "reason": r, "message": m, "lastHeartbeatTime": now, "lastTransitionTime": now}
             for t, r, m in (("MemoryPressure", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
                             ("DiskPressure", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
                             ("PIDPressure", "KubeletHasSufficientPID", "kubelet has sufficient PID available"))]
    conds.append({"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "simulated node is ready",
                  "lastHeartbeatTime": now, "lastTransitionTime": now})
    return {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
                                              "kubernetes.io/arch": "amd64", "type": "kybernetes-sim",
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


class SimNodes:
    def __init__(self, client: Client, count: int, *, prefix: str = "sim-node-", run_pods: bool = False,
                 renew_interval: float = RENEW_INTERVAL, **node_kwargs: Any) -> None:
        self.client = client
        self.names = [f"{prefix}{i:04d}" for i in range(count)]
        self.node_kwargs = node_kwargs
        self.run_pods = run_pods
        self.renew_interval = renew_interval
        self.nodes = client.resource("", "v1", "nodes")
        self.leases = client.resource("coordination.k8s.io", "v1", "leases")
        self.pods = client.resource("", "v1", "pods")
        self._tasks: list[asyncio.Task[Any]] = []
        self._pod_informer: Optional[Informer] = None
        self._inflight: set[str] = set()

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
                created["status"] = status
                await self.nodes.update(created, subresource="status")
                await self._renew(name)

        await asyncio.gather(*(one(i, n) for i, n in enumerate(self.names)))

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
        while True:
            await asyncio.sleep(self.renew_interval)
            for name in self.names:
                try:
                    await self._renew(name)
                except Exception as e:  # noqa: BLE001
                    log.warning("sim-nodes: renewing lease %s: %s", name, e)

    async def start(self) -> None:
        await self.register()
        loop = asyncio.get_running_loop()
        self._tasks.append(loop.create_task(self._renew_loop(), name="sim-nodes leases"))
        if self.run_pods:
            mine = set(self.names)
            inf = self._pod_informer = Informer(self.pods, name="sim-nodes pods")

            def seen(pod: Obj, *_: Any) -> None:
                if _:
                    pod = _[-1]
                if (pod.get("spec") or {}).get("nodeName") in mine and (pod.get("status") or {}).get("phase", "Pending") == "Pending" \
                        and not pod["metadata"].get("deletionTimestamp"):
                    key = f"{pod['metadata']['namespace']}/{pod['metadata']['name']}"
                    if key not in self._inflight:
                        self._inflight.add(key)
                        t = loop.create_task(self._run_pod(pod, key))
                        self._tasks.append(t)

            inf.add_handlers(on_add=seen, on_update=lambda old, new: seen(new))
            inf.start()
            await inf.wait_synced(60)

    async def _run_pod(self, pod: Obj, key: str) -> None:
        meta = pod["metadata"]
        now = _now()
        idx = self.names.index(pod["spec"]["nodeName"])
        ip = f"10.244.{idx % 256}.{(hash(key) % 250) + 2}"
        statuses = [{"name": c["name"], "image": c.get("image", ""), "imageID": "", "ready": True, "restartCount": 0,
                     "started": True, "containerID": f"sim://{meta.get('uid', '')}-{c['name']}",
                     "state": {"running": {"startedAt": now}}} for c in pod["spec"].get("containers") or []]
        conds = [{"type": t, "status": "True", "lastProbeTime": None, "lastTransitionTime": now}
                 for t in ("PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled")]
        status = {"phase": "Running", "conditions": conds, "hostIP": "127.0.0.1", "podIP": ip,
                  "podIPs": [{"ip": ip}], "startTime": now, "containerStatuses": statuses}
        try:
            await self.pods.patch(meta["name"], {"status": status}, "strategic", namespace=meta["namespace"], subresource="status")
        except NotFound:
            pass
        except Exception as e:  # noqa: BLE001
            log.warning("sim-nodes: running %s: %s", key, e)
        finally:
            self._inflight.discard(key)

    async def stop(self, *, delete: bool = False) -> None:
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._pod_informer is not None:
            await self._pod_informer.stop()
        if delete:
            for name in self.names:
                for h, ns in ((self.nodes, None), (self.leases, "kube-node-lease")):
                    try:
                        await h.delete(name, namespace=ns)
                    except NotFound:
                        pass
