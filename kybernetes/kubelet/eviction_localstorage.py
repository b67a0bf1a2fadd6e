"""Local ephemeral storage isolation (upstream's LocalStorageCapacityIsolation in the
eviction manager): a pod is evicted when a disk-backed emptyDir outgrows its sizeLimit,
when its ephemeral storage as a whole outgrows the sum of its containers' limits, or when
one container's writable layer and logs outgrow that container's limit.

emptyDir usage is measured by walking the volume directory (in a thread), as `du` does;
container usage comes from the Summary (CRI writable layer, log files).  Memory-medium
emptyDirs are tmpfs mounts sized at setup, so they are not measured here.

    usage = await volume_usage(pods_root, pod)          # {"scratch": 4194304}
    msg = local_storage_violation(pod, pod_stats, usage)  # upstream's message, or None
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any, Optional

from kybernetes.scheduler.resources import parse_quantity

Obj = dict[str, Any]

EMPTY_DIR_PLUGIN = "kubernetes.io~empty-dir"
# upstream's texts
EMPTY_DIR_MESSAGE = 'Usage of EmptyDir volume "{}" exceeds the limit "{}". '
CONTAINER_MESSAGE = 'Container {} exceeded its local ephemeral storage limit "{}". '
POD_MESSAGE = "Pod ephemeral local storage usage exceeds the total limit of containers {}. "
EPHEMERAL_STORAGE = "ephemeral-storage"


_BINARY = (("Ei", 60), ("Pi", 50), ("Ti", 40), ("Gi", 30), ("Mi", 20), ("Ki", 10))
_DECIMAL = (("E", 18), ("P", 15), ("T", 12), ("G", 9), ("M", 6), ("k", 3), ("", 0), ("m", -3), ("u", -6),
            ("n", -9))


def quantity_string(value: Any) -> str:
    """A quantity as upstream's Quantity.String() prints it: the canonical form, binary
    suffixes kept for binary input ("2048Ki" -> "2Mi", "1000" -> "1k")."""
    text = str(value).strip()
    try:
        q = parse_quantity(text)
    except ValueError:
        return text
    sign, q = ("-" if q < 0 else ""), abs(q)
    if q == 0:
        return "0"
    if any(text.endswith(suffix) for suffix, _ in _BINARY) and q == q.to_integral_value():
        n = int(q)
        for suffix, exp in _BINARY:
            if n % (1 << exp) == 0:
                return f"{sign}{n >> exp}{suffix}"
        return f"{sign}{n}"
    for suffix, exp in _DECIMAL:
        scaled = q.scaleb(-exp)
        if scaled == scaled.to_integral_value():
            return f"{sign}{int(scaled)}{suffix}"
    return f"{sign}{int(q.scaleb(9).to_integral_value(rounding='ROUND_CEILING'))}n"


def _disk_usage(path: Path) -> int:
    """Bytes allocated under `path`, not crossing into other filesystems (du -x)."""
    try:
        dev = os.lstat(path).st_dev
    except OSError:
        return 0
    total = 0
    for dirpath, dirnames, filenames in os.walk(path):
        keep = []
        for d in dirnames:
            try:
                st = os.lstat(os.path.join(dirpath, d))
            except OSError:
                continue
            total += st.st_blocks * 512
            if st.st_dev == dev:
                keep.append(d)
        dirnames[:] = keep
        for f in filenames:
            try:
                total += os.lstat(os.path.join(dirpath, f)).st_blocks * 512
            except OSError:
                pass
    return total


def disk_empty_dirs(pod: Obj) -> list[Obj]:
    """The pod's emptyDir volumes on the node's disk (not medium Memory)."""
    return [v for v in (pod.get("spec") or {}).get("volumes") or []
            if "emptyDir" in v and ((v.get("emptyDir") or {}).get("medium") or "") != "Memory"]


async def volume_usage(pods_root: Path, pod: Obj) -> dict[str, int]:
    """Bytes used by each disk-backed emptyDir of the pod (volumes not set up yet: absent)."""
    uid = pod["metadata"]["uid"]
    out: dict[str, int] = {}
    for v in disk_empty_dirs(pod):
        d = Path(pods_root) / uid / "volumes" / EMPTY_DIR_PLUGIN / v["name"]
        if await asyncio.to_thread(d.is_dir):
            out[v["name"]] = await asyncio.to_thread(_disk_usage, d)
    return out


def _limit(c: Obj) -> Optional[str]:
    return ((c.get("resources") or {}).get("limits") or {}).get(EPHEMERAL_STORAGE)


def pod_limit(pod: Obj) -> Optional[int]:
    """The pod's ephemeral-storage limit as upstream's PodLimits: the app containers' limits
    summed (those that set one), at least the largest init container's; None when no
    container sets one."""
    spec = pod.get("spec") or {}
    apps = [_limit(c) for c in spec.get("containers") or []]
    inits = [_limit(c) for c in spec.get("initContainers") or []]
    if all(x is None for x in apps + inits):
        return None
    total = sum(int(parse_quantity(x)) for x in apps if x is not None)
    return max([total] + [int(parse_quantity(x)) for x in inits if x is not None])


def _fs_used(fs: Optional[Obj]) -> int:
    return int((fs or {}).get("usedBytes") or 0)


def local_storage_violation(pod: Obj, pod_stats: Optional[Obj], volumes: dict[str, int]) -> Optional[str]:
    """Upstream's eviction message when the pod breaks a local storage limit, else None.
    Checked in upstream's order: emptyDir sizeLimit, the pod total, each container."""
    for v in disk_empty_dirs(pod):
        size = (v.get("emptyDir") or {}).get("sizeLimit")
        used = volumes.get(v["name"])
        if size is None or used is None:
            continue
        limit = int(parse_quantity(size))
        if limit > 0 and used > limit:
            return EMPTY_DIR_MESSAGE.format(v["name"], quantity_string(size))
    if pod_stats is None:
        return None
    containers = pod_stats.get("containers") or []
    total_limit = pod_limit(pod)
    if total_limit is not None:
        # containers' writable layers and logs, and the pod's disk-backed emptyDirs
        used = sum(_fs_used(c.get("rootfs")) + _fs_used(c.get("logs")) for c in containers) + sum(volumes.values())
        if used > total_limit:
            return POD_MESSAGE.format(quantity_string(_binary(total_limit)))
    limits = {c["name"]: _limit(c) for c in (pod.get("spec") or {}).get("containers") or [] if _limit(c)}
    for cs in containers:
        raw = limits.get(cs.get("name"))
        if raw is None or int(parse_quantity(raw)) == 0:
            continue
        used = _fs_used(cs.get("logs")) + _fs_used(cs.get("rootfs"))
        if used > int(parse_quantity(raw)):
            return CONTAINER_MESSAGE.format(cs["name"], quantity_string(raw))
    return None


def _binary(n: int) -> str:
    """An integer as a quantity string the canonical printer reads as binary SI."""
    from kybernetes.kubelet.eviction_thresholds import binary_si

    return binary_si(n)
