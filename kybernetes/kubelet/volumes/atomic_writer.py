"""Atomic projection of a set of files into a volume directory, as upstream's AtomicWriter.

The files live in a hidden, timestamped directory `..<ts>`; `..data` is a symlink to the
current one, and every user-visible top-level name is a symlink through `..data`.  An update
writes a fresh timestamped directory, then renames a new `..data_tmp` symlink over `..data`
(one atomic rename), so a reader never sees a mix of old and new files:

    vol/..2026_11_28_19_40_01.123456789/{token,ca.crt}
    vol/..data -> ..2026_11_28_19_40_01.123456789
    vol/token -> ..data/token
"""

from __future__ import annotations

import asyncio
import datetime
import functools
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Optional

from kybernetes.kubelet.volumes.ownership import RO_MASK, set_volume_ownership

DATA_DIR = "..data"
DATA_TMP = "..data_tmp"


@dataclass(frozen=True)
class FileProjection:
    data: bytes
    mode: int = 0o644


class PathError(ValueError):
    """A payload path that could escape the volume or clash with the writer's own names."""


def validate_path(p: str) -> None:
    """Upstream's validatePath: relative, no `..` element, not starting with `..`, bounded."""
    if not p:
        raise PathError("invalid path: must not be empty")
    if len(p) > 4096:
        raise PathError("invalid path: must be less than or equal to 4096 characters")
    if p.startswith("/"):
        raise PathError(f"invalid path: must be relative path: {p}")
    if any(seg == ".." for seg in p.split("/")):
        raise PathError(f"invalid path: must not contain '..': {p}")
    if p.startswith(".."):
        raise PathError(f"invalid path: must not start with '..': {p}")
    if any(len(seg) > 255 for seg in p.split("/")):
        raise PathError(f"invalid path: element longer than 255 characters: {p}")


def _read_current(ts_dir: Path) -> dict[str, FileProjection]:
    out: dict[str, FileProjection] = {}
    for root, _, files in os.walk(ts_dir):
        for f in files:
            full = Path(root) / f
            st = full.lstat()
            out[str(full.relative_to(ts_dir))] = FileProjection(full.read_bytes(), st.st_mode & 0o7777)
    return out


def _same(current: Mapping[str, FileProjection], payload: Mapping[str, FileProjection], mask: int) -> bool:
    if current.keys() != payload.keys():
        return False
    return all(c.data == payload[k].data and (c.mode | mask) == (payload[k].mode | mask)
               for k, c in current.items())


def _visible_roots(payload: Mapping[str, object]) -> set[str]:
    return {p.split("/", 1)[0] for p in payload}


class AtomicWriter:
    """Writes payloads into `target_dir` (which must exist) atomically."""

    def __init__(self, target_dir: os.PathLike | str):
        self.target = Path(target_dir)

    def current(self) -> dict[str, FileProjection]:
        """The payload `..data` points at now ({} before the first write)."""
        link = self.target / DATA_DIR
        if not link.is_symlink():
            return {}
        return _read_current(self.target / os.readlink(link))

    def write(self, payload: Mapping[str, FileProjection], *, set_perms: Optional[Callable[[], None]] = None,
              mode_mask: int = 0) -> bool:
        """Project `payload` (relative path -> file); True if anything changed on disk.

        `set_perms` runs once the new files are written and before `..data` switches to
        them (fsGroup ownership, so no reader sees files without it); `mode_mask` holds the
        mode bits it adds, which do not count as a change of the payload."""
        for p in payload:
            validate_path(p)
        clean = {os.path.normpath(p): f for p, f in payload.items()}
        link = self.target / DATA_DIR
        old_ts = os.readlink(link) if link.is_symlink() else None
        if old_ts is not None and _same(_read_current(self.target / old_ts), clean, mode_mask):
            self._link_visible(clean)  # repair user-visible links someone removed
            return False
        stamp = datetime.datetime.now(datetime.timezone.utc).strftime("..%Y_%m_%d_%H_%M_%S.")
        ts_dir = Path(tempfile.mkdtemp(prefix=stamp, dir=self.target))
        try:
            ts_dir.chmod(0o755)
            for rel, f in clean.items():
                dest = ts_dir / rel
                dest.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
                dest.write_bytes(f.data)
                dest.chmod(f.mode)
            if set_perms is not None:
                set_perms()
            tmp = self.target / DATA_TMP
            if tmp.is_symlink() or tmp.exists():
                tmp.unlink()
            tmp.symlink_to(ts_dir.name)
            os.rename(tmp, link)  # the atomic switch
        except BaseException:
            shutil.rmtree(ts_dir, ignore_errors=True)
            raise
        self._link_visible(clean)
        self._remove_stale(clean, old_ts)
        return True

    def _link_visible(self, payload: Mapping[str, FileProjection]) -> None:
        for name in _visible_roots(payload):
            path = self.target / name
            if path.is_symlink():
                continue
            path.symlink_to(f"{DATA_DIR}/{name}")

    def _remove_stale(self, payload: Mapping[str, FileProjection], old_ts: str | None) -> None:
        keep = _visible_roots(payload) | {DATA_DIR}
        for entry in self.target.iterdir():
            if entry.name in keep:
                continue
            if entry.is_symlink() and not entry.name.startswith(".."):
                # a user-visible link of a path the new payload no longer has
                entry.unlink()
            elif entry.name == old_ts:
                shutil.rmtree(entry, ignore_errors=True)


async def write_volume(target: os.PathLike | str, payload: Mapping[str, FileProjection],
                       fs_group: Optional[int] = None) -> bool:
    """Write an API data volume (configMap, secret, downwardAPI, projected) in a thread.
    With a pod fsGroup the whole volume gets it (group read: these volumes are read-only)
    before `..data` switches, on every update, as upstream's setPerms hook."""
    set_perms: Optional[Callable[[], None]] = None
    if fs_group is not None:
        set_perms = functools.partial(set_volume_ownership, target, fs_group, read_only=True)
    return await asyncio.to_thread(AtomicWriter(target).write, payload, set_perms=set_perms,
                                   mode_mask=RO_MASK if fs_group is not None else 0)
