"""Node registration, node status from the machine and the runtime, and the Lease heartbeat."""

from __future__ import annotations

import asyncio
import datetime
import json
import logging
import os
import platform
import socket
import subprocess
from pathlib import Path
from typing import Any, Callable, Optional

from kybernetes.client import AlreadyExists, Client, Conflict, NotFound
from kybernetes.kubelet.pod_status import now

log = logging.getLogger("kybernetes.kubelet.node")

KUBELET_VERSION = "v1.37.1-kyb"
MAX_PODS = 110
EVICTION_MEMORY_KI = 100 * 1024  # upstream default memory.available<100Mi
LEASE_DURATION = 40
Obj = dict[str, Any]


def machine_memory_ki() -> int:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                return int(line.split()[1])
    return 0


def disk_ki(path: Path) -> int:
    p = Path(path)
    while not p.exists():
        p = p.parent
    st = os.statvfs(p)
    return st.f_blocks * st.f_frsize // 1024


def machine_id() -> str:
    for p in ("/etc/machine-id", "/var/lib/dbus/machine-id"):
        try:
            return Path(p).read_text().strip()
        except OSError:
            pass
    return ""


def host_ip() -> str:
    """The first global IPv4 address of this (host) network namespace, else 127.0.0.1."""
    try:
        out = subprocess.run(["ip", "-4", "-j", "addr", "show", "scope", "global"],
                             capture_output=True, text=True, timeout=5).stdout
        for link in json.loads(out or "[]"):
            for a in link.get("addr_info") or []:
                if a.get("local"):
                    return a["local"]
    except (OSError, ValueError, subprocess.SubprocessError):
        pass
    return "127.0.0.1"


def micro_time() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _arch() -> str:
    m = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(m, m)


class NodeStatusManager:
    def __init__(self, client: Client, node_name: str, *, cri, data_dir: Path, node_ip: Optional[str] = None,
                 status_interval: float = 10.0, lease_interval: float = 10.0):
        self.client = client
        self.node_name = node_name
        self.cri = cri
        self.data_dir = Path(data_dir)
        self.node_ip = node_ip or host_ip()
        self.status_interval = status_interval
        self.lease_interval = lease_interval
        self.nodes = client.resource("", "v1", "nodes", namespaced=False)
        self.leases = client.resource("coordination.k8s.io", "v1", "leases", namespaced=True)
        self.runtime_version = ""
        self.node_uid = ""
        self.kubelet_port = 10250  # the kubelet server's port once it listens
        self._last_status: Optional[Obj] = None
        self._last_write = 0.0
        self._tasks: list[asyncio.Task] = []
        self.pressure: Callable[[], set[str]] = set  # the eviction manager's conditions under pressure

    # ------------------------------------------------------------ status
    def capacity(self) -> dict[str, str]:
        return {
            "cpu": str(os.cpu_count() or 1),
            "memory": f"{machine_memory_ki()}Ki",
            "pods": str(MAX_PODS),
            "ephemeral-storage": f"{disk_ki(self.data_dir)}Ki",
            "hugepages-1Gi": "0",
            "hugepages-2Mi": "0",
        }

    def allocatable(self) -> dict[str, str]:
        cap = self.capacity()
        cap["memory"] = f"{max(0, machine_memory_ki() - EVICTION_MEMORY_KI)}Ki"
        cap["ephemeral-storage"] = f"{disk_ki(self.data_dir) * 90 // 100}Ki"  # nodefs.available<10%
        return cap

    async def runtime_conditions(self) -> tuple[bool, str]:
        try:
            conds = await self.cri.conditions()
        except Exception as e:  # the runtime is down
            return False, f"container runtime is down: {e}"
        if not conds.get("RuntimeReady"):
            return False, "container runtime is not ready"
        if not conds.get("NetworkReady"):
            return False, "container runtime network not ready: NetworkReady=false"
        return True, "kubelet is posting ready status"

    async def build_status(self, old: Optional[Obj] = None) -> Obj:
        if not self.runtime_version:
            v = await self.cri.version()
            self.runtime_version = f"{v.runtime_name}://{v.runtime_version}"
        ready, msg = await self.runtime_conditions()
        ts = now()
        old_conds = {c["type"]: c for c in ((old or {}).get("conditions") or [])}

        def cond(t: str, status: str, reason: str, message: str) -> Obj:
            prev = old_conds.get(t)
            trans = prev["lastTransitionTime"] if prev and prev.get("status") == status else ts
            return {"type": t, "status": status, "reason": reason, "message": message,
                    "lastHeartbeatTime": ts, "lastTransitionTime": trans}

        uname = os.uname()
        pressure = self.pressure()
        mem = (cond("MemoryPressure", "True", "KubeletHasInsufficientMemory", "kubelet has insufficient memory available")
               if "MemoryPressure" in pressure else
               cond("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"))
        disk = (cond("DiskPressure", "True", "KubeletHasDiskPressure", "kubelet has disk pressure")
                if "DiskPressure" in pressure else
                cond("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"))
        return {
            "capacity": self.capacity(),
            "allocatable": self.allocatable(),
            "conditions": [
                mem,
                disk,
                (cond("PIDPressure", "True", "KubeletHasInsufficientPID", "kubelet has insufficient PID available")
                 if "PIDPressure" in pressure else
                 cond("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available")),
                cond("Ready", "True" if ready else "False", "KubeletReady" if ready else "KubeletNotReady", msg),
            ],
            "addresses": [{"type": "InternalIP", "address": self.node_ip},
                          {"type": "Hostname", "address": self.node_name}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": self.kubelet_port}},
            "nodeInfo": {
                "machineID": machine_id(), "systemUUID": machine_id(), "bootID": _boot_id(),
                "kernelVersion": uname.release, "osImage": _os_image(),
                "containerRuntimeVersion": self.runtime_version,
                "kubeletVersion": KUBELET_VERSION, "kubeProxyVersion": "",
                "operatingSystem": "linux", "architecture": _arch(),
            },
        }

    async def register(self) -> Obj:
        node = {"apiVersion": "v1", "kind": "Node",
                "metadata": {"name": self.node_name,
                             "labels": {"kubernetes.io/hostname": self.node_name, "kubernetes.io/os": "linux",
                                        "kubernetes.io/arch": _arch(), "beta.kubernetes.io/os": "linux",
                                        "beta.kubernetes.io/arch": _arch()},
                             "annotations": {"node.alpha.kubernetes.io/ttl": "0"}},
                "spec": {}}
        try:
            obj = await self.nodes.create(node)
        except (AlreadyExists, Conflict):
            obj = await self.nodes.get(self.node_name)
        self.node_uid = obj["metadata"]["uid"]
        await self.update_status(force=True)
        return obj

    async def update_status(self, force: bool = False) -> None:
        try:
            cur = await self.nodes.get(self.node_name)
        except NotFound:
            await self.register()
            return
        self.node_uid = cur["metadata"]["uid"]
        status = await self.build_status(cur.get("status"))
        loop = asyncio.get_running_loop()
        comparable = _strip_times(status)
        # compare with the node as the API has it too, not only with our last write: the
        # node lifecycle controller sets Ready=Unknown when heartbeats stop (upstream's
        # kubelet likewise rebuilds and posts from the current node)
        drifted = _condition_states(status, cur.get("status") or {}) != _condition_states(status, status)
        if not force and not drifted and comparable == self._last_status and loop.time() - self._last_write < 60:
            return
        await self.nodes.patch(self.node_name, {"status": status}, "merge", subresource="status")
        self._last_status = comparable
        self._last_write = loop.time()

    # ------------------------------------------------------------ lease
    async def renew_lease(self) -> None:
        body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": self.node_name, "namespace": "kube-node-lease"},
                "spec": {"holderIdentity": self.node_name, "leaseDurationSeconds": LEASE_DURATION,
                         "renewTime": micro_time()}}
        if self.node_uid:
            body["metadata"]["ownerReferences"] = [{"apiVersion": "v1", "kind": "Node", "name": self.node_name,
                                                    "uid": self.node_uid}]
        try:
            await self.leases.patch(self.node_name, {"spec": body["spec"]}, "merge", namespace="kube-node-lease")
        except NotFound:
            try:
                await self.leases.create(body, "kube-node-lease")
            except AlreadyExists:
                pass

    async def _loop(self, fn, interval: float, what: str) -> None:
        while True:
            try:
                await fn()
            except asyncio.CancelledError:
                raise
            except Exception as e:
                log.warning("%s failed: %s", what, e)
            await asyncio.sleep(interval)

    def start(self) -> None:
        self._tasks = [asyncio.ensure_future(self._loop(self.renew_lease, self.lease_interval, "lease renewal")),
                       asyncio.ensure_future(self._loop(self.update_status, self.status_interval, "node status"))]

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []


def _condition_states(ours: Obj, status: Obj) -> dict[str, tuple]:
    """(status, reason, message) of each condition type the kubelet posts (`ours`), in `status`."""
    have = {c.get("type"): c for c in status.get("conditions") or []}
    out = {}
    for c in ours.get("conditions") or []:
        h = have.get(c["type"]) or {}
        out[c["type"]] = (h.get("status"), h.get("reason"), h.get("message"))
    return out


def _strip_times(status: Obj) -> Obj:
    s = dict(status)
    s["conditions"] = [{k: v for k, v in c.items() if k != "lastHeartbeatTime"} for c in status["conditions"]]
    return s


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def _os_image() -> str:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip('"')
    except OSError:
        pass
    return socket.gethostname()
