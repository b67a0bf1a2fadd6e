"""Node registration, node status from the machine and the runtime, and the Lease heartbeat."""

from __future__ import annotations

import asyncio
import copy
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
STATUS_REPORT_PERIOD = 60.0  # a status write at least this often even when nothing changed
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
        self._last_write = 0.0
        self._tasks: list[asyncio.Task] = []
        self.pressure: Callable[[], set[str]] = set  # the eviction manager's conditions under pressure
        self.events = None  # the kubelet's EventRecorder: node condition and reboot events
        self._status_lock = asyncio.Lock()
        self.report_period = STATUS_REPORT_PERIOD

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
        """Post the node's status as a strategic merge patch against the node as the API has
        it, as upstream's kubelet does: the conditions merge by type, so ones another
        component wrote (NetworkUnavailable, a custom one) stay.  Skipped when nothing but
        heartbeats would change and the last write is recent."""
        async with self._status_lock:  # the periodic sync and a pressure change may overlap
            try:
                cur = await self.nodes.get(self.node_name)
            except NotFound:
                cur = None
            if cur is not None:
                await self._update_status(cur, force)
                return
        await self.register()

    async def _update_status(self, cur: Obj, force: bool) -> None:
        self.node_uid = cur["metadata"]["uid"]
        old = cur.get("status") or {}
        status = await self.build_status(old)
        new, transitions = merge_status(old, status)
        loop = asyncio.get_running_loop()
        # compared with the node as the API has it, not only with our last write: the node
        # lifecycle controller sets Ready=Unknown when heartbeats stop
        unchanged = _strip_times(new) == _strip_times(old)
        if not force and unchanged and loop.time() - self._last_write < self.report_period:
            return
        patch = status_patch(old, new)
        if patch:
            await self.nodes.patch(self.node_name, {"status": patch}, "strategic", subresource="status")
        self._last_write = loop.time()
        self._record_events(old, status, transitions)

    def _record_events(self, old: Obj, status: Obj, transitions: list[tuple[str, str]]) -> None:
        if self.events is None:
            return
        for etype, reason in transitions:
            self.events.node_event(etype, reason, f"Node {self.node_name} status is now: {reason}")
        was = (old.get("nodeInfo") or {}).get("bootID") or ""
        boot = (status.get("nodeInfo") or {}).get("bootID") or ""
        if was and boot and was != boot:
            self.events.node_event("Warning", "Rebooted", f"Node {self.node_name} has been rebooted, boot id: {boot}")

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


# the event each kubelet-owned condition's new status is announced with (upstream's setters)
TRANSITION_EVENTS: dict[tuple[str, str], str] = {
    ("MemoryPressure", "True"): "NodeHasInsufficientMemory", ("MemoryPressure", "False"): "NodeHasSufficientMemory",
    ("DiskPressure", "True"): "NodeHasDiskPressure", ("DiskPressure", "False"): "NodeHasNoDiskPressure",
    ("PIDPressure", "True"): "NodeHasInsufficientPID", ("PIDPressure", "False"): "NodeHasSufficientPID",
    ("Ready", "True"): "NodeReady", ("Ready", "False"): "NodeNotReady", ("Ready", "Unknown"): "NodeNotReady",
}


def merge_status(old: Obj, ours: Obj) -> tuple[Obj, list[tuple[str, str]]]:
    """The node status after the kubelet's fields (`ours`) land on `old`: its conditions
    replace those of the same type in place (new types are appended), conditions of other
    types are left alone.  Also the (event type, reason) of each condition that flipped."""
    new = copy.deepcopy(old)
    for k, v in ours.items():
        if k not in ("conditions", "capacity", "allocatable"):
            new[k] = copy.deepcopy(v)
    # resources others advertise (extended resources patched into capacity) stay, with
    # allocatable following capacity for them as upstream's machine-info setter keeps it
    cap = {**(old.get("capacity") or {}), **(ours.get("capacity") or {})}
    alloc = ours.get("allocatable") or {}
    if "capacity" in ours:
        new["capacity"] = cap
    if "allocatable" in ours:
        new["allocatable"] = {k: alloc.get(k, v) for k, v in cap.items()}
    conds = new.setdefault("conditions", [])
    index = {c.get("type"): i for i, c in enumerate(conds)}
    transitions: list[tuple[str, str]] = []
    for c in ours.get("conditions") or []:
        i = index.get(c["type"])
        prev = conds[i] if i is not None else None
        c = dict(c)
        if prev is not None and prev.get("status") == c["status"] and prev.get("lastTransitionTime"):
            c["lastTransitionTime"] = prev["lastTransitionTime"]
        reason = TRANSITION_EVENTS.get((c["type"], c["status"]))
        if prev is None:
            # a pressure condition starts out Unknown, so its first status is a change; Ready
            # is announced when it first appears True (upstream's node usually registers
            # NotReady and flips, which is what a user sees there)
            if reason and (c["type"] != "Ready" or c["status"] == "True"):
                transitions.append(("Normal", reason))
            conds.append(c)
            index[c["type"]] = len(conds) - 1
        else:
            if prev.get("status") != c["status"] and reason:
                transitions.append(("Normal", reason))
            conds[i] = c
    return new, transitions


def status_patch(old: Obj, new: Obj) -> Obj:
    """The strategic merge patch of the status from `old` to `new`, as upstream's kubelet
    sends it: conditions by type with `$setElementOrder/conditions`; addresses, whose
    merge-by-type schema is wrong for a list that may hold two of a type, replaced whole."""
    from kybernetes.api.patch import create_two_way_merge_patch
    from kybernetes.api.patch.patchmeta import patch_schema_for_definition

    schema = patch_schema_for_definition("io.k8s.api.core.v1.NodeStatus")
    patch = create_two_way_merge_patch(old, new, schema)
    if old.get("addresses") and old.get("addresses") != new.get("addresses"):
        patch.pop("$setElementOrder/addresses", None)
        patch["addresses"] = copy.deepcopy(new.get("addresses") or []) + [{"$patch": "replace"}]
    return patch


def _strip_times(status: Obj) -> Obj:
    s = dict(status)
    s["conditions"] = [{k: v for k, v in c.items() if k != "lastHeartbeatTime"} for c in status.get("conditions") or []]
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
