"""Fixtures for the CRI integration tests (see cri_helpers.py for what they set up)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kybernetes.kubelet import runtime_cleanup as cleanup

from cri_helpers import start_node, stop_node

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config, items):
    if os.geteuid() == 0:  # CI runs as root; only a non-root developer run skips.
        return
    skip = pytest.mark.skip(reason="CRI integration tests need root (containerd, runc, network namespaces)")
    for item in items:
        if HERE in Path(str(item.fspath)).resolve().parents:
            item.add_marker(skip)


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    n = start_node(tmp_path_factory, "cri", registries=True)
    yield n
    stop_node(n)
    assert not cleanup.mounts_under(n.data_dir), "mounts left under the data dir"
    assert not cleanup.cgroup_dirs(n.cgroup_root), "test cgroups left behind"
    assert not n.netns.exists()


