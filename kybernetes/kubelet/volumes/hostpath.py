"""hostPath volumes: a node path, checked (or created) according to its type."""

from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path

from kybernetes.kubelet.volumes.base import MountedVolume, Obj, VolumeContext, VolumeError

PLUGIN = "host-path"


def check_type(path: str, ptype: str) -> None:
    """Upstream's hostPath type check (creating DirectoryOrCreate/FileOrCreate paths)."""
    def mode():
        try:
            return os.stat(path).st_mode
        except OSError:
            return None
    m = mode()
    if ptype == "":
        return
    if ptype == "DirectoryOrCreate":
        if m is None:
            os.makedirs(path, mode=0o755, exist_ok=True)
            return
        ptype = "Directory"
    if ptype == "FileOrCreate":
        if m is None:
            try:
                fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o644)
            except OSError as e:
                raise VolumeError(f"open {path}: {e.strerror.lower() if e.strerror else e}")
            os.close(fd)
            return
        ptype = "File"
    checks = {
        "Directory": (stat.S_ISDIR, "is not a directory"),
        "File": (stat.S_ISREG, "is not a file"),
        "Socket": (stat.S_ISSOCK, "is not a socket file"),
        "CharDevice": (stat.S_ISCHR, "is not a character device"),
        "BlockDevice": (stat.S_ISBLK, "is not a block device"),
    }
    if ptype not in checks:
        raise VolumeError(f"{ptype} is an invalid volume type")
    fn, what = checks[ptype]
    if m is None or not fn(m):
        raise VolumeError(f"hostPath type check failed: {path} {what}")


async def setup(ctx: VolumeContext, vol: Obj) -> MountedVolume:
    src = vol["hostPath"]
    path = src.get("path", "")
    await asyncio.to_thread(check_type, path, src.get("type") or "")
    return MountedVolume(Path(path))
