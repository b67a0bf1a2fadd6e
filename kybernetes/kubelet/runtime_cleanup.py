"""Host clean-up primitives for the container runtime: mounts under a directory,
containerd shims by socket, process trees, cgroups (v1 hierarchies and v2).

Everything here acts on what it is pointed at (a path, a socket, a PID), never on
processes or mounts found by name alone.
"""

from __future__ import annotations

import ctypes
import errno
import os
import signal
import time
from pathlib import Path
from typing import Iterable, Optional

CGROUP_ROOT = Path("/sys/fs/cgroup")
MNT_DETACH = 2

_libc = ctypes.CDLL(None, use_errno=True)


def _unescape(field: str) -> str:
    # /proc/self/mountinfo escapes space, tab, newline and backslash as \ooo.
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and i + 4 <= len(field) and field[i + 1:i + 4].isdigit():
            out.append(chr(int(field[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def mounts_under(path: os.PathLike | str) -> list[str]:
    """Mount points at or below `path` in this mount namespace, in mount order."""
    base = os.path.realpath(path)
    prefix = base.rstrip("/") + "/"
    found = []
    try:
        with open("/proc/self/mountinfo") as f:
            for line in f:
                mp = _unescape(line.split(" ", 5)[4])
                if mp == base or mp.startswith(prefix):
                    found.append(mp)
    except OSError:
        return []
    return found


def unmount(mountpoint: str) -> bool:
    """Lazily unmount one mount point; True if something was unmounted."""
    if _libc.umount2(os.fsencode(mountpoint), MNT_DETACH) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOENT):  # not a mount point (any more)
        return False
    raise OSError(err, f"umount {mountpoint}: {os.strerror(err)}")


def unmount_under(path: os.PathLike | str) -> int:
    """Unmount everything at or below `path`, deepest and latest first. Returns how many."""
    n = 0
    for _ in range(8):  # stacked mounts: repeat until none is left
        mps = mounts_under(path)
        if not mps:
            break
        for mp in sorted(reversed(mps), key=lambda m: -m.count("/")):
            try:
                n += unmount(mp)
            except OSError:
                pass
    return n


def _cmdline(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
    except OSError:
        return []


def _pids() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def shim_pids(address: str) -> list[int]:
    """PIDs of containerd shims serving the containerd whose socket is `address`."""
    address = address[len("unix://"):] if address.startswith("unix://") else address
    out = []
    for pid in _pids():
        argv = _cmdline(pid)
        if not argv or "containerd-shim" not in os.path.basename(argv[0]):
            continue
        for i, a in enumerate(argv[:-1]):
            if a in ("-address", "--address") and argv[i + 1] == address:
                out.append(pid)
                break
    return out


def _ppid(pid: int) -> Optional[int]:
    try:
        with open(f"/proc/{pid}/stat") as f:
            data = f.read()
        return int(data[data.rindex(")") + 2:].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def descendants(pid: int) -> list[int]:
    """All live descendants of `pid` (children first)."""
    children: dict[int, list[int]] = {}
    for p in _pids():
        pp = _ppid(p)
        if pp is not None:
            children.setdefault(pp, []).append(p)
    out, stack = [], list(children.get(pid, []))
    while stack:
        p = stack.pop()
        out.append(p)
        stack.extend(children.get(p, []))
    return out


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie is dead for our purposes.
    try:
        with open(f"/proc/{pid}/stat") as f:
            data = f.read()
        return data[data.rindex(")") + 2] != "Z"
    except (OSError, ValueError, IndexError):
        return False


def kill_pids(pids: Iterable[int], sig: int = signal.SIGKILL) -> None:
    for p in pids:
        try:
            os.kill(p, sig)
        except ProcessLookupError:
            pass


def wait_gone(pids: Iterable[int], timeout: float) -> list[int]:
    """Wait until none of `pids` is alive; returns those still alive at the deadline."""
    pids = list(pids)
    deadline = time.monotonic() + timeout
    while True:
        pids = [p for p in pids if alive(p)]
        if not pids or time.monotonic() >= deadline:
            return pids
        time.sleep(0.02)


def kill_tree(pid: int, timeout: float = 5.0) -> None:
    """SIGKILL `pid` and all its descendants."""
    victims = [pid, *descendants(pid)]
    kill_pids(victims)
    wait_gone(victims, timeout)


def cgroup_dirs(relpath: str) -> list[Path]:
    """The directories of cgroup `relpath` in every mounted hierarchy that has it."""
    rel = relpath.strip("/")
    out = []
    if not rel or not CGROUP_ROOT.is_dir():
        return out
    if (CGROUP_ROOT / "cgroup.controllers").exists():  # pure cgroup v2
        p = CGROUP_ROOT / rel
        return [p] if p.is_dir() else []
    for h in sorted(CGROUP_ROOT.iterdir()):
        if h.is_symlink() or not h.is_dir():
            continue
        p = h / rel
        if p.is_dir():
            out.append(p)
    return out


def cgroup_pids(relpath: str) -> set[int]:
    pids: set[int] = set()
    for d in cgroup_dirs(relpath):
        for procs in d.rglob("cgroup.procs"):
            try:
                pids.update(int(x) for x in procs.read_text().split())
            except (OSError, ValueError):
                pass
    return pids


def remove_cgroup(relpath: str, *, kill: bool = True, timeout: float = 5.0) -> list[Path]:
    """Remove cgroup `relpath` (and sub-cgroups) from every hierarchy, killing what
    still runs in it when `kill`.  Returns the directories that could not be removed."""
    if kill:
        pids = cgroup_pids(relpath)
        kill_pids(pids)
        wait_gone(pids, timeout)
    left = []
    deadline = time.monotonic() + timeout
    for d in cgroup_dirs(relpath):
        subdirs = sorted((p for p in d.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts))
        for p in [*subdirs, d]:
            while True:
                try:
                    p.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError as e:
                    if e.errno == errno.EBUSY and time.monotonic() < deadline:
                        time.sleep(0.02)  # tasks still exiting
                        continue
                    left.append(p)
                    break
    return left
