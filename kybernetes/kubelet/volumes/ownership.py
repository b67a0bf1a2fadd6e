"""Pod volume ownership (securityContext.fsGroup), as upstream's SetVolumeOwnership: every
file and directory of the volume gets the fsGroup as its group, group read/write (read only
for read-only volumes), and directories also group execute plus the setgid bit, so files the
pod creates later inherit the group.  Symlinks only change group; their mode means nothing
and a chmod would follow them to the target.

Policy "OnRootMismatch" skips the walk when the volume root already looks done;
"Always" (and no policy) walks every time the plugin asks."""

from __future__ import annotations

import asyncio
import logging
import os
import stat
from typing import Any, Optional

log = logging.getLogger(__name__)

RW_MASK = 0o660
RO_MASK = 0o440
EXEC_MASK = 0o110

ALWAYS = "Always"
ON_ROOT_MISMATCH = "OnRootMismatch"


def pod_fs_group(pod: dict[str, Any]) -> tuple[Optional[int], str]:
    """(fsGroup, fsGroupChangePolicy) of the pod's securityContext; (None, "") when unset."""
    sc = ((pod.get("spec") or {}).get("securityContext")) or {}
    g = sc.get("fsGroup")
    if g is None:
        return None, ""
    return int(g), sc.get("fsGroupChangePolicy") or ""


def _mask(read_only: bool, is_dir: bool) -> int:
    m = RO_MASK if read_only else RW_MASK
    if is_dir:
        m |= stat.S_ISGID | EXEC_MASK
    return m


def requires_change(root: str, fs_group: int, read_only: bool) -> bool:
    """Whether the volume root is not yet owned as fsGroup wants (OnRootMismatch's test)."""
    try:
        st = os.stat(root)
    except OSError:
        return True
    if st.st_gid != fs_group:
        return True
    if not stat.S_ISDIR(st.st_mode):
        return True  # a file volume root: always re-apply
    want = _mask(read_only, True)
    return (st.st_mode & want) != want


def _change_one(path: str, fs_group: int, read_only: bool) -> None:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return  # removed while we walked
    try:
        os.lchown(path, -1, fs_group)
    except OSError as e:
        log.warning("lchown %s: %s", path, e)
    if stat.S_ISLNK(st.st_mode):
        return
    mode = stat.S_IMODE(st.st_mode) | _mask(read_only, stat.S_ISDIR(st.st_mode))
    if mode != stat.S_IMODE(st.st_mode):
        try:
            os.chmod(path, mode)
        except OSError as e:
            log.warning("chmod %s: %s", path, e)


def set_volume_ownership(root: str | os.PathLike, fs_group: Optional[int], *, read_only: bool = False,
                         policy: str = "") -> int:
    """Apply fsGroup to everything under `root` (blocking: call it in a thread). Returns how
    many entries were changed, 0 when there is no fsGroup or the policy let us skip."""
    if fs_group is None:
        return 0
    root = os.fspath(root)
    if policy == ON_ROOT_MISMATCH and not requires_change(root, fs_group, read_only):
        return 0
    n = 0
    # the root first, then everything below without following symlinks (a link may point
    # out of the volume; its target is not ours to change)
    _change_one(root, fs_group, read_only)
    n += 1
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        for name in dirnames + filenames:
            _change_one(os.path.join(dirpath, name), fs_group, read_only)
            n += 1
    return n


async def apply(root: str | os.PathLike, fs_group: Optional[int], *, read_only: bool = False,
                policy: str = "") -> int:
    """set_volume_ownership off the event loop (a volume may hold many files)."""
    if fs_group is None:
        return 0
    return await asyncio.to_thread(set_volume_ownership, root, fs_group, read_only=read_only, policy=policy)
