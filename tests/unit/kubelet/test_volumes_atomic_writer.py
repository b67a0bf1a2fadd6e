"""The atomic writer: `..data` symlink swap, user-visible links, modes, stale removal."""

from __future__ import annotations

import os

import pytest

from kybernetes.kubelet.volumes.atomic_writer import DATA_DIR, AtomicWriter, FileProjection, PathError, validate_path


def F(data: str, mode: int = 0o644) -> FileProjection:
    return FileProjection(data.encode(), mode)


def test_first_write_layout(tmp_path):
    w = AtomicWriter(tmp_path)
    assert w.write({"a": F("1"), "dir/b": F("2", 0o400)}) is True
    data = tmp_path / DATA_DIR
    assert data.is_symlink() and os.readlink(data).startswith("..")
    assert os.readlink(tmp_path / "a") == "..data/a"
    assert os.readlink(tmp_path / "dir") == "..data/dir"
    assert (tmp_path / "a").read_text() == "1"
    assert (tmp_path / "dir" / "b").read_text() == "2"
    assert (tmp_path / "dir" / "b").stat().st_mode & 0o777 == 0o400
    assert w.current() == {"a": F("1"), "dir/b": F("2", 0o400)}


def test_unchanged_payload_is_not_rewritten(tmp_path):
    w = AtomicWriter(tmp_path)
    w.write({"a": F("1")})
    before = os.readlink(tmp_path / DATA_DIR)
    assert w.write({"a": F("1")}) is False
    assert os.readlink(tmp_path / DATA_DIR) == before


def test_update_swaps_data_and_removes_old(tmp_path):
    w = AtomicWriter(tmp_path)
    w.write({"a": F("1"), "gone": F("x")})
    old = os.readlink(tmp_path / DATA_DIR)
    assert w.write({"a": F("2"), "new": F("y")}) is True
    new = os.readlink(tmp_path / DATA_DIR)
    assert new != old
    assert not (tmp_path / old).exists()
    assert (tmp_path / "a").read_text() == "2"
    assert (tmp_path / "new").read_text() == "y"
    assert not os.path.lexists(tmp_path / "gone")
    hidden = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".."))
    assert hidden == sorted([DATA_DIR, new])


def test_mode_change_alone_is_an_update(tmp_path):
    w = AtomicWriter(tmp_path)
    w.write({"a": F("1", 0o644)})
    assert w.write({"a": F("1", 0o600)}) is True
    assert (tmp_path / "a").stat().st_mode & 0o777 == 0o600


def test_open_file_keeps_old_content(tmp_path):
    # a reader holding the old file keeps consistent content across the swap
    w = AtomicWriter(tmp_path)
    w.write({"a": F("old")})
    with open(tmp_path / "a") as f:
        w.write({"a": F("new")})
        assert f.read() == "old"
    assert (tmp_path / "a").read_text() == "new"


def test_empty_payload(tmp_path):
    w = AtomicWriter(tmp_path)
    w.write({"a": F("1")})
    assert w.write({}) is True
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("..")) == []
    assert (tmp_path / DATA_DIR).is_symlink()


@pytest.mark.parametrize("bad", ["", "/abs", "../x", "a/../b", "..hidden", "x" * 256])
def test_invalid_paths_rejected(tmp_path, bad):
    with pytest.raises(PathError):
        validate_path(bad)
    with pytest.raises(PathError):
        AtomicWriter(tmp_path).write({bad: F("1")})
    assert list(tmp_path.iterdir()) == []


def test_valid_nested_path():
    validate_path("a/b/c.txt")
    validate_path("a..b")
