"""fsGroup volume ownership (upstream SetVolumeOwnership) on a real temp directory, and the
atomic writer keeping it across `..data` updates."""

from __future__ import annotations

import asyncio
import os
import stat

import pytest

from kybernetes.kubelet.volumes import ownership
from kybernetes.kubelet.volumes.atomic_writer import FileProjection, write_volume

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="chown to another group needs root")

GID = 2345


def _tree(root):
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / "f").write_text("x")
    (root / "f").chmod(0o600)
    (root / "sub" / "g").write_text("y")
    (root / "sub" / "g").chmod(0o644)
    (root / "sub" / "deeper").chmod(0o700)
    (root / "link").symlink_to("/etc/hostname")  # points out of the volume
    os.chown(root / "sub" / "g", 1234, 0)


def _mode(p):
    return stat.S_IMODE(os.lstat(p).st_mode)


def test_walk_sets_group_setgid_and_group_rw(tmp_path):
    root = tmp_path / "vol"
    root.mkdir(mode=0o755)
    _tree(root)
    target_before = (os.stat("/etc/hostname").st_gid, _mode("/etc/hostname"))
    n = ownership.set_volume_ownership(root, GID)
    assert n == 6
    for p in (root, root / "f", root / "sub", root / "sub" / "g", root / "sub" / "deeper", root / "link"):
        assert os.lstat(p).st_gid == GID, p
    # the owner never changes
    assert os.stat(root / "sub" / "g").st_uid == 1234
    assert _mode(root / "f") == 0o660
    assert _mode(root / "sub" / "g") == 0o664
    assert _mode(root / "sub") == 0o2775
    assert _mode(root / "sub" / "deeper") == 0o2770
    assert _mode(root) == 0o2775
    # the symlink's target is not the volume's to change
    assert (os.stat("/etc/hostname").st_gid, _mode("/etc/hostname")) == target_before


def test_read_only_volume_gets_group_read_only(tmp_path):
    root = tmp_path / "vol"
    root.mkdir(mode=0o700)
    (root / "f").write_text("x")
    (root / "f").chmod(0o600)
    ownership.set_volume_ownership(root, GID, read_only=True)
    assert _mode(root / "f") == 0o640
    assert _mode(root) == 0o2750


def test_no_fs_group_changes_nothing(tmp_path):
    root = tmp_path / "vol"
    root.mkdir(mode=0o700)
    assert ownership.set_volume_ownership(root, None) == 0
    assert _mode(root) == 0o700 and os.stat(root).st_gid == os.getegid()


def test_on_root_mismatch_skips_a_matching_root(tmp_path):
    root = tmp_path / "vol"
    root.mkdir()
    (root / "f").write_text("x")
    assert ownership.requires_change(str(root), GID, False)
    assert ownership.set_volume_ownership(root, GID, policy=ownership.ON_ROOT_MISMATCH) == 2
    # a file changed behind our back is left alone while the root still matches ...
    os.chown(root / "f", 0, 0)
    assert not ownership.requires_change(str(root), GID, False)
    assert ownership.set_volume_ownership(root, GID, policy=ownership.ON_ROOT_MISMATCH) == 0
    assert os.stat(root / "f").st_gid == 0
    # ... and fixed by Always
    assert ownership.set_volume_ownership(root, GID, policy=ownership.ALWAYS) == 2
    assert os.stat(root / "f").st_gid == GID
    # a root without the setgid bit no longer matches
    root.chmod(0o775)
    assert ownership.requires_change(str(root), GID, False)


def test_pod_fs_group():
    assert ownership.pod_fs_group({"spec": {}}) == (None, "")
    pod = {"spec": {"securityContext": {"fsGroup": 2000, "fsGroupChangePolicy": "OnRootMismatch"}}}
    assert ownership.pod_fs_group(pod) == (2000, "OnRootMismatch")


def test_atomic_writer_keeps_ownership_across_updates(tmp_path):
    root = tmp_path / "cm"
    root.mkdir()

    async def run():
        assert await write_volume(root, {"a": FileProjection(b"1", 0o400)}, GID)
        # same payload: nothing rewritten although ownership added group read to the mode
        assert not await write_volume(root, {"a": FileProjection(b"1", 0o400)}, GID)
        first = os.readlink(root / "..data")
        assert await write_volume(root, {"a": FileProjection(b"2", 0o400), "d/b": FileProjection(b"3")}, GID)
        assert os.readlink(root / "..data") != first
    asyncio.run(run())
    data = root / os.readlink(root / "..data")
    assert (root / "a").read_text() == "2"
    for p in (data, data / "a", data / "d", data / "d" / "b", root):
        assert os.stat(p).st_gid == GID, p
    assert _mode(data / "a") == 0o440
    assert _mode(data / "d" / "b") == 0o644
    assert _mode(data / "d") & 0o2000
