"""Pod cgroups under the kubepods hierarchy, by QoS class, with the cgroupfs driver
(upstream's layout):

    /<root>/pod<uid>                 Guaranteed
    /<root>/burstable/pod<uid>       Burstable
    /<root>/besteffort/pod<uid>      BestEffort

The kubelet creates a pod's cgroup with pod-level limits (the sum of its containers',
as upstream's ResourceConfigForPod) before the sandbox starts; the runtime creates
the containers' cgroups beneath it.  Cgroup v1 (one hierarchy per controller) and v2
(one unified tree) are both written.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Optional

from kybernetes.kubelet.pod_status import CPU_PERIOD, MAX_SHARES, MIN_SHARES
from kybernetes.scheduler.resources import parse_quantity

CGROUP_ROOT = Path("/sys/fs/cgroup")
GUARANTEED, BURSTABLE, BESTEFFORT = "Guaranteed", "Burstable", "BestEffort"
_QOS_DIR = {GUARANTEED: "", BURSTABLE: "burstable", BESTEFFORT: "besteffort"}

Obj = dict[str, Any]


def qos_class(pod: Obj) -> str:
    """Upstream's GetPodQOS over init and app containers: Guaranteed when every
    container's cpu and memory requests equal limits, BestEffort when nothing is set."""
    spec = pod.get("spec") or {}
    cs = (spec.get("initContainers") or []) + (spec.get("containers") or [])
    any_set, guaranteed = False, True
    for c in cs:
        res = c.get("resources") or {}
        req, lim = res.get("requests") or {}, res.get("limits") or {}
        for name in ("cpu", "memory"):
            r, lv = req.get(name), lim.get(name)
            if (r is not None and parse_quantity(r) != 0) or (lv is not None and parse_quantity(lv) != 0):
                any_set = True
            if lv is None or (r is not None and parse_quantity(r) != parse_quantity(lv)):
                guaranteed = False
    if not any_set:
        return BESTEFFORT
    return GUARANTEED if guaranteed else BURSTABLE


def pod_cgroup(root: str, uid: str, qos: str) -> str:
    """The pod's cgroup path (absolute, as CRI's cgroup_parent wants it)."""
    parts = [root.strip("/"), _QOS_DIR[qos], f"pod{uid}"]
    return "/" + "/".join(p for p in parts if p)


@dataclass
class PodResources:
    cpu_shares: int
    cpu_quota: Optional[int] = None  # microseconds per CPU_PERIOD; None: unlimited
    memory_limit: Optional[int] = None


def _container_value(c: Obj, name: str, kind: str) -> Optional[Decimal]:
    """A container's `kind` (requests or limits) of resource `name`; a request defaults to the limit."""
    res = c.get("resources") or {}
    v = (res.get(kind) or {}).get(name)
    if v is None and kind == "requests":
        v = (res.get("limits") or {}).get(name)
    return None if v is None else parse_quantity(v)


def _effective(pod: Obj, name: str, kind: str) -> tuple[Decimal, bool]:
    """(pod total of `kind` for resource `name`, whether every container sets it):
    the sum over app containers, or the largest init container if that is more."""
    spec = pod.get("spec") or {}
    total, all_set = Decimal(0), True
    for c in spec.get("containers") or []:
        v = _container_value(c, name, kind)
        if v is None:
            all_set = False
        else:
            total += v
    for c in spec.get("initContainers") or []:
        v = _container_value(c, name, kind)
        if v is None:
            all_set = False
        else:
            total = max(total, v)
    return total, all_set


def pod_resources(pod: Obj) -> PodResources:
    """Pod-level cgroup settings: shares from the cpu requests (2 for BestEffort), a CFS
    quota and memory limit only when every container has that limit."""
    if qos_class(pod) == BESTEFFORT:
        return PodResources(MIN_SHARES)
    # the RuntimeClass overhead (spec.overhead) counts towards the pod's requests, and
    # towards its limits where the containers set them (upstream's PodRequests/PodLimits)
    overhead = {k: parse_quantity(v) for k, v in ((pod.get("spec") or {}).get("overhead") or {}).items()}
    cpu_req, _ = _effective(pod, "cpu", "requests")
    cpu_req += overhead.get("cpu", 0)
    shares = max(MIN_SHARES, min(MAX_SHARES, int(cpu_req * 1000) * 1024 // 1000))
    out = PodResources(shares)
    cpu_lim, all_cpu = _effective(pod, "cpu", "limits")
    if all_cpu:
        cpu_lim += overhead.get("cpu", 0)
        out.cpu_quota = max(1000, int(cpu_lim * 1000) * CPU_PERIOD // 1000)
    mem_lim, all_mem = _effective(pod, "memory", "limits")
    if all_mem:
        out.memory_limit = int(mem_lim + overhead.get("memory", 0))
    return out


def _write(path: Path, value: str) -> None:
    try:
        path.write_text(value)
    except OSError:
        pass  # a controller this kernel lacks, or a limit below current usage


def _v1_dir(root: Path, controller: str) -> Optional[Path]:
    for name in (controller, f"{controller},cpuacct", f"cpuacct,{controller}"):
        p = root / name
        if p.is_dir():
            return p
    return None


def ensure_pod_cgroup(path: str, res: PodResources, root: Path = CGROUP_ROOT) -> None:
    """Create the pod's cgroup (in the cpu and memory hierarchies on v1; runc makes the rest) and write
    its limits.  The QoS parents get created on the way (update_qos_cgroups sets them)."""
    rel = path.strip("/")
    if (root / "cgroup.controllers").exists():  # unified hierarchy
        d = root / rel
        d.mkdir(parents=True, exist_ok=True)
        # cpu.weight from shares as the kernel's v1->v2 conversion does
        _write(d / "cpu.weight", str(1 + ((res.cpu_shares - 2) * 9999) // 262142))
        _write(d / "cpu.max", f"{res.cpu_quota if res.cpu_quota else 'max'} {CPU_PERIOD}")
        _write(d / "memory.max", str(res.memory_limit) if res.memory_limit else "max")
        return
    for ctl in ("cpu", "memory"):
        base = _v1_dir(root, ctl)
        if base is None:
            continue
        d = base / rel
        d.mkdir(parents=True, exist_ok=True)
        if ctl == "cpu":
            _write(d / "cpu.shares", str(res.cpu_shares))
            _write(d / "cpu.cfs_period_us", str(CPU_PERIOD))
            _write(d / "cpu.cfs_quota_us", str(res.cpu_quota if res.cpu_quota else -1))
        elif ctl == "memory" and res.memory_limit:
            _write(d / "memory.limit_in_bytes", str(res.memory_limit))


def pod_cpu_request_milli(pod: Obj) -> int:
    """The pod's cpu request in millicores (as pod_resources counts it)."""
    req, _ = _effective(pod, "cpu", "requests")
    return int(req * 1000)


def update_qos_cgroups(root: str, burstable_milli: int, cgroot: Path = CGROUP_ROOT) -> None:
    """The QoS class cgroups' cpu shares, as upstream's QoS container manager keeps them:
    BestEffort the minimum, Burstable the sum of its pods' cpu requests."""
    rel = root.strip("/")
    shares = max(MIN_SHARES, min(MAX_SHARES, burstable_milli * 1024 // 1000))
    if (cgroot / "cgroup.controllers").exists():
        for name, sh in (("burstable", shares), ("besteffort", MIN_SHARES)):
            d = cgroot / rel / name
            d.mkdir(parents=True, exist_ok=True)
            _write(d / "cpu.weight", str(1 + ((sh - 2) * 9999) // 262142))
        return
    base = _v1_dir(cgroot, "cpu")
    if base is None:
        return
    for name, sh in (("burstable", shares), ("besteffort", MIN_SHARES)):
        d = base / rel / name
        d.mkdir(parents=True, exist_ok=True)
        _write(d / "cpu.shares", str(sh))
