"""emptyDir volumes: a directory on the node's disk, or a tmpfs (medium Memory) sized by
sizeLimit, the pod's memory limit and the node's allocatable memory."""

from __future__ import annotations

import asyncio
import ctypes
import os
from decimal import Decimal
from pathlib import Path
from typing import Optional

from kybernetes.kubelet.volumes import ownership
from kybernetes.kubelet.volumes.base import MountedVolume, Obj, VolumeContext, VolumeError
from kybernetes.scheduler.resources import parse_quantity

PLUGIN = "empty-dir"
_libc = ctypes.CDLL(None, use_errno=True)


def is_mountpoint(path: Path) -> bool:
    target = os.path.realpath(path)
    with open("/proc/self/mountinfo") as f:
        for line in f:
            if line.split(" ", 5)[4] == target:
                return True
    return False


def _mount_tmpfs(path: Path, size: Optional[int]) -> bool:
    if is_mountpoint(path):
        return False
    opts = "mode=0777" + (f",size={size}" if size else "")
    if _libc.mount(b"tmpfs", os.fsencode(path), b"tmpfs", 0, opts.encode()) != 0:
        err = ctypes.get_errno()
        raise VolumeError(f"mount tmpfs on {path}: {os.strerror(err)}")
    return True


async def mount_tmpfs(path: Path, size: Optional[int]) -> bool:
    """Mount a tmpfs at `path` unless one is already there; True if this call mounted it."""
    return await asyncio.to_thread(_mount_tmpfs, path, size)


def memory_size(pod: Obj, size_limit: Optional[str], allocatable: Optional[str] = None) -> Optional[int]:
    """The tmpfs size, as upstream's SizeMemoryBackedVolumes: the smallest of sizeLimit, the
    pod's memory limit (when every container sets one) and the node's allocatable memory."""
    limits = [((c.get("resources") or {}).get("limits") or {}).get("memory")
              for c in (pod.get("spec") or {}).get("containers") or []]
    pod_limit: Optional[Decimal] = sum((parse_quantity(x) for x in limits), Decimal(0)) \
        if limits and all(x is not None for x in limits) else None
    node = parse_quantity(allocatable) if allocatable else None
    sizes = [q for q in (parse_quantity(size_limit) if size_limit else None, pod_limit, node) if q]
    return int(min(sizes)) if sizes else None


async def setup(ctx: VolumeContext, vol: Obj) -> MountedVolume:
    src = vol.get("emptyDir") or {}
    d = ctx.volume_dir(PLUGIN, vol["name"])
    fresh = not d.exists()
    if fresh:
        d.mkdir(parents=True)
        d.chmod(0o777)
    medium = src.get("medium") or ""
    if medium == "Memory":
        fresh |= await mount_tmpfs(d, memory_size(ctx.pod, src.get("sizeLimit"),
                                                  ctx.node_allocatable().get("memory")))
    elif medium not in ("",):
        raise VolumeError(f"unsupported emptyDir medium {medium!r}")
    if fresh:
        # once, when the volume comes to be (upstream: before it is marked ready); the
        # policy is not consulted for emptyDir
        await ownership.apply(d, ctx.fs_group)
    return MountedVolume(d)
