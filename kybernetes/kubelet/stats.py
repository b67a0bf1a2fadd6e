"""Stats from the CRI (ListPodSandboxStats, ListContainerStats, ImageFsInfo) and the node's
root cgroup, shaped as upstream's Summary API (`/stats/summary`, statsapi/v1alpha1) and
rendered as `/metrics/resource` (Prometheus text, what metrics-server scrapes).

The builders are pure functions of plain samples; `StatsProvider` gathers the samples
(every call reads fresh values) and keeps the previous CPU sample of each cgroup so
usageNanoCores is a rate even where the runtime leaves it out.

    sp = StatsProvider(cri, node_name="n1", data_dir=DIR, log_root=LOGS)
    summary = await sp.summary()            # dict, JSON of /stats/summary
    text = await sp.resource_metrics()      # str, body of /metrics/resource
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any, Optional

from kybernetes.cri import pb

Obj = dict[str, Any]

L_UID = "io.kubernetes.pod.uid"
L_NAME = "io.kubernetes.pod.name"
L_NS = "io.kubernetes.pod.namespace"
L_CONTAINER = "io.kubernetes.container.name"
CGROUP_ROOT = Path("/sys/fs/cgroup")
RESOURCE_METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def rfc3339(ns: int) -> str:
    """Upstream's metav1.Time: seconds precision, UTC."""
    return datetime.fromtimestamp(ns / 1e9, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# ------------------------------------------------------------------ samples


@dataclass
class CPUSample:
    time_ns: int
    usage_core_ns: Optional[int] = None
    usage_nano_cores: Optional[int] = None


@dataclass
class MemorySample:
    time_ns: int
    usage: Optional[int] = None
    working_set: Optional[int] = None
    rss: Optional[int] = None
    available: Optional[int] = None
    page_faults: Optional[int] = None
    major_page_faults: Optional[int] = None


@dataclass
class FsSample:
    time_ns: int
    capacity: Optional[int] = None
    available: Optional[int] = None
    used: Optional[int] = None
    inodes: Optional[int] = None
    inodes_free: Optional[int] = None
    inodes_used: Optional[int] = None


@dataclass
class NodeSample:
    name: str
    start_ns: int
    cpu: Optional[CPUSample] = None
    memory: Optional[MemorySample] = None
    fs: Optional[FsSample] = None
    image_fs: Optional[FsSample] = None
    maxpid: Optional[int] = None
    curproc: Optional[int] = None


@dataclass
class ContainerSample:
    name: str
    start_ns: int
    cpu: Optional[CPUSample] = None
    memory: Optional[MemorySample] = None
    rootfs: Optional[FsSample] = None
    logs: Optional[FsSample] = None


@dataclass
class PodSample:
    name: str
    namespace: str
    uid: str
    start_ns: int
    cpu: Optional[CPUSample] = None
    memory: Optional[MemorySample] = None
    network: Optional[Obj] = None  # already in Summary shape
    processes: Optional[int] = None
    containers: list[ContainerSample] = field(default_factory=list)


# ------------------------------------------------------------------ Summary API


def _drop_none(d: Obj) -> Obj:
    return {k: v for k, v in d.items() if v is not None}


def cpu_json(c: Optional[CPUSample]) -> Optional[Obj]:
    if c is None:
        return None
    return _drop_none({"time": rfc3339(c.time_ns), "usageNanoCores": c.usage_nano_cores,
                       "usageCoreNanoSeconds": c.usage_core_ns})


def memory_json(m: Optional[MemorySample]) -> Optional[Obj]:
    if m is None:
        return None
    return _drop_none({"time": rfc3339(m.time_ns), "availableBytes": m.available, "usageBytes": m.usage,
                       "workingSetBytes": m.working_set, "rssBytes": m.rss, "pageFaults": m.page_faults,
                       "majorPageFaults": m.major_page_faults})


def fs_json(f: Optional[FsSample]) -> Optional[Obj]:
    if f is None:
        return None
    return _drop_none({"time": rfc3339(f.time_ns), "availableBytes": f.available, "capacityBytes": f.capacity,
                       "usedBytes": f.used, "inodesFree": f.inodes_free, "inodes": f.inodes,
                       "inodesUsed": f.inodes_used})


def _ephemeral(pod: PodSample, image_fs: Optional[FsSample]) -> Optional[Obj]:
    """A pod's ephemeral storage: its containers' writable layers and logs (as upstream,
    on the node's filesystem figures)."""
    parts = [f for c in pod.containers for f in (c.rootfs, c.logs) if f is not None and f.used is not None]
    if not parts:
        return None
    base = image_fs or FsSample(max(f.time_ns for f in parts))
    return fs_json(FsSample(max(f.time_ns for f in parts), capacity=base.capacity, available=base.available,
                            used=sum(f.used or 0 for f in parts), inodes=base.inodes, inodes_free=base.inodes_free,
                            inodes_used=sum(f.inodes_used or 0 for f in parts)))


def build_summary(node: NodeSample, pods: list[PodSample]) -> Obj:
    """The Summary API object (statsapi/v1alpha1 Summary) for one node and its pods."""
    n: Obj = {"nodeName": node.name, "startTime": rfc3339(node.start_ns)}
    n.update(_drop_none({"cpu": cpu_json(node.cpu), "memory": memory_json(node.memory), "fs": fs_json(node.fs)}))
    if node.image_fs is not None:
        n["runtime"] = {"imageFs": fs_json(node.image_fs)}
    if node.maxpid is not None or node.curproc is not None:
        t = (node.cpu or node.memory or FsSample(time.time_ns())).time_ns
        n["rlimit"] = _drop_none({"time": rfc3339(t), "maxpid": node.maxpid, "curproc": node.curproc})
    out_pods = []
    for p in pods:
        containers = []
        for c in sorted(p.containers, key=lambda c: c.name):
            cj: Obj = {"name": c.name, "startTime": rfc3339(c.start_ns)}
            cj.update(_drop_none({"cpu": cpu_json(c.cpu), "memory": memory_json(c.memory),
                                  "rootfs": fs_json(c.rootfs), "logs": fs_json(c.logs)}))
            containers.append(cj)
        pj: Obj = {"podRef": {"name": p.name, "namespace": p.namespace, "uid": p.uid},
                   "startTime": rfc3339(p.start_ns), "containers": containers}
        pj.update(_drop_none({"cpu": cpu_json(p.cpu), "memory": memory_json(p.memory), "network": p.network,
                              "ephemeral-storage": _ephemeral(p, node.image_fs)}))
        if p.processes is not None:
            pj["process_stats"] = {"process_count": p.processes}
        out_pods.append(pj)
    return {"node": n, "pods": out_pods}


def cpu_and_memory_only(summary: Obj) -> Obj:
    """A summary cut down to node, pod and container CPU and memory (upstream's
    `?only_cpu_and_memory=true`)."""
    def keep(d: Obj, names: tuple[str, ...]) -> Obj:
        return {k: v for k, v in d.items() if k in names}
    node = keep(summary.get("node") or {}, ("nodeName", "startTime", "cpu", "memory", "systemContainers"))
    pods = []
    for p in summary.get("pods") or []:
        q = keep(p, ("podRef", "startTime", "cpu", "memory"))
        q["containers"] = [keep(c, ("name", "startTime", "cpu", "memory")) for c in p.get("containers") or []]
        pods.append(q)
    return {"node": node, "pods": pods}


# ------------------------------------------------------------------ /metrics/resource


def go_float(v: float) -> str:
    """A float as Go's strconv.FormatFloat(v, 'g', -1, 64), the Prometheus text format's
    spelling: shortest digits, exponent form from 1e+06 up or below 1e-04."""
    v = float(v)
    if v == 0:
        return "0"
    if v != v:
        return "NaN"
    if v in (float("inf"), float("-inf")):
        return "+Inf" if v > 0 else "-Inf"
    sign, digits, exp = Decimal(repr(v)).normalize().as_tuple()
    ds = "".join(map(str, digits))
    e10 = len(ds) + int(exp) - 1  # exponent of the first digit
    neg = "-" if sign else ""
    if e10 < -4 or e10 >= 6:
        mant = ds[0] + ("." + ds[1:] if len(ds) > 1 else "")
        return f"{neg}{mant}e{'+' if e10 >= 0 else '-'}{abs(e10):02d}"
    point = e10 + 1
    if point <= 0:
        return f"{neg}0.{'0' * -point}{ds}"
    if point >= len(ds):
        return f"{neg}{ds}{'0' * (point - len(ds))}"
    return f"{neg}{ds[:point]}.{ds[point:]}"


def _labels(**kv: str) -> str:
    def esc(s: str) -> str:
        return s.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
    return "{" + ",".join(f'{k}="{esc(v)}"' for k, v in kv.items()) + "}" if kv else ""


METRICS = [  # name, type, help (upstream's stability level in the help text)
    ("container_cpu_usage_seconds_total", "counter",
     "[STABLE] Cumulative cpu time consumed by the container in core-seconds"),
    ("container_memory_working_set_bytes", "gauge", "[STABLE] Current working set of the container in bytes"),
    ("container_start_time_seconds", "gauge", "[STABLE] Start time of the container since unix epoch in seconds"),
    ("node_cpu_usage_seconds_total", "counter", "[STABLE] Cumulative cpu time consumed by the node in core-seconds"),
    ("node_memory_working_set_bytes", "gauge", "[STABLE] Current working set of the node in bytes"),
    ("pod_cpu_usage_seconds_total", "counter", "[STABLE] Cumulative cpu time consumed by the pod in core-seconds"),
    ("pod_memory_working_set_bytes", "gauge", "[STABLE] Current working set of the pod in bytes"),
    ("resource_scrape_error", "gauge", "[STABLE] 1 if there was an error while getting container metrics, 0 otherwise"),
]


def render_resource_metrics(summary: Obj, *, scrape_error: bool = False) -> str:
    """`/metrics/resource` from a Summary: each sample carries its own timestamp (ms)."""
    samples: dict[str, list[str]] = {m[0]: [] for m in METRICS}

    def ms(t: str) -> int:
        return int(datetime.strptime(t, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp() * 1000)

    def cpu(name: str, c: Optional[Obj], labels: str) -> None:
        if c and c.get("usageCoreNanoSeconds") is not None:
            samples[name].append(f"{name}{labels} {go_float(c['usageCoreNanoSeconds'] / 1e9)} {ms(c['time'])}")

    def mem(name: str, m: Optional[Obj], labels: str) -> None:
        if m and m.get("workingSetBytes") is not None:
            samples[name].append(f"{name}{labels} {go_float(m['workingSetBytes'])} {ms(m['time'])}")

    node = summary.get("node") or {}
    cpu("node_cpu_usage_seconds_total", node.get("cpu"), "")
    mem("node_memory_working_set_bytes", node.get("memory"), "")
    for p in summary.get("pods") or []:
        ref = p["podRef"]
        pl = _labels(namespace=ref["namespace"], pod=ref["name"])
        cpu("pod_cpu_usage_seconds_total", p.get("cpu"), pl)
        mem("pod_memory_working_set_bytes", p.get("memory"), pl)
        for c in p.get("containers") or []:
            cl = _labels(container=c["name"], namespace=ref["namespace"], pod=ref["name"])
            cpu("container_cpu_usage_seconds_total", c.get("cpu"), cl)
            mem("container_memory_working_set_bytes", c.get("memory"), cl)
            if c.get("startTime"):
                st = ms(c["startTime"])
                samples["container_start_time_seconds"].append(
                    f"container_start_time_seconds{cl} {go_float(st / 1000)} {st}")
    samples["resource_scrape_error"].append(f"resource_scrape_error {1 if scrape_error else 0}")
    out = []
    for name, typ, help_ in METRICS:
        if not samples[name]:
            continue
        out += [f"# HELP {name} {help_}", f"# TYPE {name} {typ}", *sorted(samples[name])]
    return "\n".join(out) + "\n"


# ------------------------------------------------------------------ from the CRI


def _u(msg: Any, name: str) -> Optional[int]:
    """An optional UInt64Value field of a CRI message."""
    return getattr(msg, name).value if msg is not None and msg.HasField(name) else None


def cpu_from_cri(c: "pb.CpuUsage") -> CPUSample:
    return CPUSample(c.timestamp, _u(c, "usage_core_nano_seconds"), _u(c, "usage_nano_cores"))


def memory_from_cri(m: "pb.MemoryUsage") -> MemorySample:
    return MemorySample(m.timestamp, usage=_u(m, "usage_bytes"), working_set=_u(m, "working_set_bytes"),
                        rss=_u(m, "rss_bytes"), available=_u(m, "available_bytes"),
                        page_faults=_u(m, "page_faults"), major_page_faults=_u(m, "major_page_faults"))


def network_from_cri(n: "pb.NetworkUsage") -> Optional[Obj]:
    def iface(i: "pb.NetworkInterfaceUsage") -> Obj:
        return _drop_none({"name": i.name, "rxBytes": _u(i, "rx_bytes"), "rxErrors": _u(i, "rx_errors"),
                           "txBytes": _u(i, "tx_bytes"), "txErrors": _u(i, "tx_errors")})
    if not n.timestamp:
        return None
    out: Obj = {"time": rfc3339(n.timestamp)}
    if n.HasField("default_interface"):
        out.update(iface(n.default_interface))
    out["interfaces"] = [iface(i) for i in n.interfaces]
    return out


def parse_net_dev(text: str, now_ns: int, default: str = "eth0") -> Optional[Obj]:
    """Summary network stats from a /proc/<pid>/net/dev table (loopback left out, as
    upstream); None when the pod has no other interface."""
    ifaces = []
    for line in text.splitlines()[2:]:
        name, _, rest = line.partition(":")
        name = name.strip()
        f = rest.split()
        if not name or name == "lo" or len(f) < 11:
            continue
        ifaces.append({"name": name, "rxBytes": int(f[0]), "rxErrors": int(f[2]),
                       "txBytes": int(f[8]), "txErrors": int(f[10])})
    if not ifaces:
        return None
    main = next((i for i in ifaces if i["name"] == default), ifaces[0])
    return {"time": rfc3339(now_ns), **main, "interfaces": ifaces}


def _sandbox_pid(status_response) -> Optional[int]:
    raw = status_response.info.get("info") if status_response.info else None
    try:
        return int(json.loads(raw).get("pid")) if raw else None
    except (ValueError, TypeError, AttributeError):
        return None


def _read_net_dev(pid: int) -> Optional[str]:
    try:
        return Path(f"/proc/{pid}/net/dev").read_text()
    except OSError:
        return None


class RateTracker:
    """usageNanoCores from two cumulative samples of the same cgroup (as cadvisor, and
    upstream's CRI stats provider when the runtime gives none)."""

    def __init__(self) -> None:
        self.prev: dict[str, tuple[int, int]] = {}

    def fill(self, key: str, c: Optional[CPUSample]) -> None:
        if c is None or c.usage_core_ns is None:
            return
        prev = self.prev.get(key)
        self.prev[key] = (c.time_ns, c.usage_core_ns)
        # Our own rate over the interval between our own samples wins: containerd 1.6
        # computes its figure against whatever call sampled the cgroup last (a
        # ListPodSandboxStats a millisecond earlier), which makes it noise.
        if prev and c.time_ns > prev[0] and c.usage_core_ns >= prev[1]:
            c.usage_nano_cores = int((c.usage_core_ns - prev[1]) * 1e9 / (c.time_ns - prev[0]))

    def forget_except(self, keys: set[str]) -> None:
        for k in [k for k in self.prev if k not in keys]:
            del self.prev[k]


# ------------------------------------------------------------------ node


def _read_int(p: Path) -> Optional[int]:
    try:
        return int(p.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _memory_stat(p: Path) -> dict[str, int]:
    out: dict[str, int] = {}
    try:
        for line in p.read_text().splitlines():
            k, _, v = line.partition(" ")
            out[k] = int(v)
    except (OSError, ValueError):
        pass
    return out


def _meminfo_total() -> Optional[int]:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return None


def statvfs_sample(path: os.PathLike | str) -> Optional[FsSample]:
    try:
        st = os.statvfs(path)
    except OSError:
        return None
    cap = st.f_blocks * st.f_frsize
    avail = st.f_bavail * st.f_frsize
    return FsSample(time.time_ns(), capacity=cap, available=avail, used=cap - st.f_bfree * st.f_frsize,
                    inodes=st.f_files, inodes_free=st.f_ffree, inodes_used=st.f_files - st.f_ffree)


def node_cgroup_sample(root: Path = CGROUP_ROOT) -> tuple[Optional[CPUSample], Optional[MemorySample]]:
    """CPU and memory of the whole machine from the root cgroup (cgroup v1, or v2 when
    that is how the machine is mounted)."""
    now = time.time_ns()
    cpu_ns = _read_int(root / "cpuacct" / "cpuacct.usage")
    if cpu_ns is None:  # cgroup v2: usage_usec in the root's cpu.stat
        stat = _memory_stat(root / "cpu.stat")
        cpu_ns = stat["usage_usec"] * 1000 if "usage_usec" in stat else None
    cpu = CPUSample(now, cpu_ns) if cpu_ns is not None else None
    total = _meminfo_total()
    usage = _read_int(root / "memory" / "memory.usage_in_bytes")
    stat = _memory_stat(root / "memory" / "memory.stat")
    mem = None
    if usage is not None:
        ws = max(0, usage - stat.get("total_inactive_file", 0))
        mem = MemorySample(now, usage=usage, working_set=ws, rss=stat.get("total_rss"),
                           available=max(0, total - ws) if total is not None else None,
                           page_faults=stat.get("total_pgfault"), major_page_faults=stat.get("total_pgmajfault"))
    return cpu, mem


def _dir_usage(path: Path) -> tuple[int, int]:
    """Bytes and inodes under `path` (container logs)."""
    size = inodes = 0
    for dirpath, dirnames, filenames in os.walk(path):
        inodes += len(dirnames) + len(filenames)
        for f in filenames:
            try:
                size += os.lstat(os.path.join(dirpath, f)).st_blocks * 512
            except OSError:
                pass
    return size, inodes


# ------------------------------------------------------------------ collector


class StatsProvider:
    """Collects node, pod and container stats through the CRI on each call."""

    def __init__(self, cri, *, node_name: str, data_dir: os.PathLike | str, log_root: Optional[os.PathLike | str] = None,
                 cgroup_root: Path = CGROUP_ROOT, start_ns: Optional[int] = None):
        self.cri = cri
        self.node_name = node_name
        self.data_dir = Path(data_dir)
        self.log_root = Path(log_root) if log_root else self.data_dir / "pods"
        self.cgroup_root = cgroup_root
        self.start_ns = start_ns or _boot_ns()
        self.rates = RateTracker()
        self._pids: dict[str, int] = {}  # sandbox id -> its PID 1
        self._lock = asyncio.Lock()  # rates need ordered samples

    async def node_sample(self) -> NodeSample:
        cpu, mem = await asyncio.to_thread(node_cgroup_sample, self.cgroup_root)
        fs = await asyncio.to_thread(statvfs_sample, self.data_dir)
        image_fs = None
        try:
            info = await self.cri.image_fs_info()
            if info.image_filesystems:
                u = info.image_filesystems[0]
                image_fs = await asyncio.to_thread(statvfs_sample, u.fs_id.mountpoint) or FsSample(u.timestamp)
                image_fs.time_ns = u.timestamp or image_fs.time_ns
                image_fs.used = _u(u, "used_bytes")
                image_fs.inodes_used = _u(u, "inodes_used")
        except Exception:  # noqa: BLE001 - a runtime without ImageFsInfo still has node stats
            image_fs = None
        return NodeSample(self.node_name, self.start_ns, cpu=cpu, memory=mem, fs=fs, image_fs=image_fs,
                          maxpid=_read_int(Path("/proc/sys/kernel/pid_max")), curproc=_proc_count())

    async def pod_samples(self) -> list[PodSample]:
        sandboxes = {s.id: s for s in await self.cri.list_pod_sandbox() if s.state == pb.SANDBOX_READY}
        containers = {c.id: c for c in await self.cri.list_containers() if c.state == pb.CONTAINER_RUNNING}
        sbx_stats = {s.attributes.id: s for s in await self.cri.list_pod_sandbox_stats()}
        ctr_stats = await self.cri.list_container_stats()
        # the newest ready sandbox of each pod
        newest: dict[str, Any] = {}
        for s in sandboxes.values():
            uid = s.labels.get(L_UID) or s.metadata.uid
            if uid not in newest or s.created_at > newest[uid].created_at:
                newest[uid] = s
        pods: dict[str, PodSample] = {}
        for uid, s in newest.items():
            p = PodSample(s.labels.get(L_NAME, s.metadata.name), s.labels.get(L_NS, s.metadata.namespace), uid,
                          s.created_at)
            st = sbx_stats.get(s.id)
            if st is not None and st.HasField("linux"):
                lx = st.linux
                if lx.HasField("cpu"):
                    p.cpu = cpu_from_cri(lx.cpu)
                if lx.HasField("memory"):
                    p.memory = memory_from_cri(lx.memory)
                if lx.HasField("network"):
                    p.network = network_from_cri(lx.network)
                if lx.HasField("process"):
                    p.processes = _u(lx.process, "process_count")
            if p.network is None:
                # containerd 1.6 leaves pod network stats out: read the sandbox's
                # network namespace through its PID 1 (/proc/<pid>/net/dev)
                p.network = await self._netns_stats(s.id)
            pods[s.id] = p
        for gone in [k for k in self._pids if k not in sandboxes]:
            del self._pids[gone]
        for cs in ctr_stats:
            c = containers.get(cs.attributes.id)
            if c is None or c.pod_sandbox_id not in pods:
                continue
            p = pods[c.pod_sandbox_id]
            name = c.labels.get(L_CONTAINER, c.metadata.name)
            sample = ContainerSample(name, c.created_at)
            if cs.HasField("cpu"):
                sample.cpu = cpu_from_cri(cs.cpu)
            if cs.HasField("memory"):
                sample.memory = memory_from_cri(cs.memory)
            if cs.HasField("writable_layer"):
                w = cs.writable_layer
                sample.rootfs = FsSample(w.timestamp, used=_u(w, "used_bytes"), inodes_used=_u(w, "inodes_used"))
            logs = self.log_root / f"{p.namespace}_{p.name}_{p.uid}" / name
            used, inodes = await asyncio.to_thread(_dir_usage, logs)
            sample.logs = FsSample(time.time_ns(), used=used, inodes_used=inodes)
            p.containers.append(sample)
        return list(pods.values())

    async def _netns_stats(self, sid: str) -> Optional[Obj]:
        pid = self._pids.get(sid)
        if pid is None:
            try:
                pid = self._pids[sid] = _sandbox_pid(await self.cri.pod_sandbox_status(sid, verbose=True)) or 0
            except Exception:  # noqa: BLE001 - a sandbox that just went away has no stats
                return None
        if not pid:
            return None
        text = await asyncio.to_thread(_read_net_dev, pid)
        return parse_net_dev(text, time.time_ns()) if text else None

    async def samples(self) -> tuple[NodeSample, list[PodSample]]:
        async with self._lock:
            node, pods = await asyncio.gather(self.node_sample(), self.pod_samples())
            keys = {"node"}
            self.rates.fill("node", node.cpu)
            for p in pods:
                keys.add(f"pod/{p.uid}")
                self.rates.fill(f"pod/{p.uid}", p.cpu)
                for c in p.containers:
                    keys.add(f"ctr/{p.uid}/{c.name}/{c.start_ns}")
                    self.rates.fill(f"ctr/{p.uid}/{c.name}/{c.start_ns}", c.cpu)
            self.rates.forget_except(keys)
            _fill_from_containers(pods)
            return node, pods

    async def summary(self) -> Obj:
        """The `/stats/summary` document."""
        node, pods = await self.samples()
        return build_summary(node, pods)

    async def resource_metrics(self) -> str:
        """The `/metrics/resource` body (content type RESOURCE_METRICS_CONTENT_TYPE)."""
        try:
            summary = await self.summary()
        except Exception:  # noqa: BLE001 - upstream reports the failure as a metric
            return render_resource_metrics({}, scrape_error=True)
        return render_resource_metrics(summary)


def _fill_from_containers(pods: list[PodSample]) -> None:
    """A pod the runtime gave no pod-level numbers for: the sum of its containers."""
    for p in pods:
        if p.cpu is None and p.containers and all(c.cpu and c.cpu.usage_core_ns is not None for c in p.containers):
            p.cpu = CPUSample(max(c.cpu.time_ns for c in p.containers),  # type: ignore[union-attr]
                              sum(c.cpu.usage_core_ns for c in p.containers),  # type: ignore[union-attr,misc]
                              sum(c.cpu.usage_nano_cores or 0 for c in p.containers))  # type: ignore[union-attr]
        if p.memory is None and p.containers and all(c.memory and c.memory.working_set is not None
                                                     for c in p.containers):
            p.memory = MemorySample(max(c.memory.time_ns for c in p.containers),  # type: ignore[union-attr]
                                    usage=sum(c.memory.usage or 0 for c in p.containers),  # type: ignore[union-attr]
                                    working_set=sum(c.memory.working_set for c in p.containers),  # type: ignore
                                    rss=sum(c.memory.rss or 0 for c in p.containers))  # type: ignore[union-attr]


def _boot_ns() -> int:
    try:
        up = float(Path("/proc/uptime").read_text().split()[0])
        return int((time.time() - up) * 1e9)
    except (OSError, ValueError):
        return time.time_ns()


def _proc_count() -> Optional[int]:
    try:
        return sum(1 for d in os.listdir("/proc") if d.isdigit())
    except OSError:
        return None


# ------------------------------------------------------------------ entry points for the HTTPS server

_default: Optional[StatsProvider] = None


def set_provider(provider: Optional[StatsProvider]) -> None:
    """The kubelet registers its provider here; the HTTPS endpoints call summary()."""
    global _default
    _default = provider


def clear_provider(provider: StatsProvider) -> None:
    """A stopping kubelet withdraws its provider (if it is still the registered one)."""
    global _default
    if _default is provider:
        _default = None


async def summary() -> Obj:
    """`/stats/summary` of this node's kubelet."""
    if _default is None:
        raise RuntimeError("no stats provider: the kubelet has not started")
    return await _default.summary()


async def resource_metrics() -> str:
    """`/metrics/resource` of this node's kubelet."""
    if _default is None:
        raise RuntimeError("no stats provider: the kubelet has not started")
    return await _default.resource_metrics()
