"""`local` PersistentVolumes: a directory of this node bind-mounted into the pod's volume
directory, pods/<uid>/volumes/kubernetes.io~local-volume/<pv name>, read-only when the claim
(or the PV's mountOptions) says so, and owned by the pod's fsGroup on the first mount."""

from __future__ import annotations

import asyncio
import ctypes
import os
import stat
from pathlib import Path

from kybernetes.kubelet.volumes import ownership
from kybernetes.kubelet.volumes.base import MountedVolume, MountError, Obj, VolumeContext
from kybernetes.kubelet.volumes.emptydir import is_mountpoint

PLUGIN = "local-volume"
NEW_MOUNTER = "MountVolume.NewMounter initialization"
SET_UP = "MountVolume.SetUp"

MS_RDONLY = 0x1
MS_REMOUNT = 0x20
MS_BIND = 0x1000
MNT_DETACH = 0x2
_libc = ctypes.CDLL(None, use_errno=True)


def source_kind(path: str) -> str:
    """"dir" or "block" for the PV's path, as upstream's host file-type check; raises
    ValueError with upstream's wording otherwise."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise ValueError(f'path "{path}" does not exist') from None
    if stat.S_ISDIR(st.st_mode):
        return "dir"
    if stat.S_ISBLK(st.st_mode):
        return "block"
    raise ValueError("only directory and block device are supported")


def _bind(src: str, dst: Path, read_only: bool) -> bool:
    """Bind-mount `src` at `dst` unless something is mounted there; True if this call did."""
    if is_mountpoint(dst):
        return False
    dst.mkdir(parents=True, exist_ok=True, mode=0o750)
    target = os.fsencode(dst)
    if _libc.mount(os.fsencode(src), target, None, MS_BIND, None) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount --bind {src} {dst}: {os.strerror(err)}")
    if read_only:
        # a bind mount takes MS_RDONLY only on a remount of itself
        if _libc.mount(None, target, None, MS_BIND | MS_REMOUNT | MS_RDONLY, None) != 0:
            err = ctypes.get_errno()
            _libc.umount2(target, MNT_DETACH)
            raise OSError(err, f"remount {dst} read-only: {os.strerror(err)}")
    return True


async def setup(ctx: VolumeContext, pv: Obj, read_only: bool) -> MountedVolume:
    """Bind-mount the local PV into the pod; `read_only` is the claim's readOnly."""
    name = (pv.get("metadata") or {}).get("name", "")
    spec = pv.get("spec") or {}
    path = (spec.get("local") or {}).get("path") or ""
    if not path:
        raise MountError(NEW_MOUNTER, name, "local volume source is nil or local path is not set")
    d = ctx.volume_dir(PLUGIN, name)
    if await asyncio.to_thread(is_mountpoint, d):
        return MountedVolume(d, read_only=read_only)  # mounted on an earlier sync: left as it is
    try:
        kind = await asyncio.to_thread(source_kind, path)
    except ValueError as e:
        raise MountError(NEW_MOUNTER, name, str(e)) from None
    if kind == "block":
        raise MountError(SET_UP, name, f"local volume {path} is a block device: formatting and mounting "
                                       "block devices is not supported by this kubelet")
    if any(seg == ".." for seg in path.split("/")):
        raise MountError(SET_UP, name, f"invalid path: {path} must not contain '..'")
    bind_ro = read_only or "ro" in (spec.get("mountOptions") or [])
    try:
        fresh = await asyncio.to_thread(_bind, path, d, bind_ro)
    except OSError as e:
        raise MountError(SET_UP, name, e.strerror or str(e)) from None
    if fresh and not bind_ro:
        # upstream writes ownership once, on the first mount of the volume for the pod
        await ownership.apply(d, ctx.fs_group, policy=ctx.fs_group_policy)
    return MountedVolume(d, read_only=read_only)
