"""Shared set-up of the kubelet suites: a real `kyb server` (with its controllers, so
service accounts and kube-root-ca.crt exist for the kube-api-access volume) and containerd
in a test-created network namespace with no uplink (network safety rule)."""

from __future__ import annotations

import asyncio
import os
import uuid

import pytest

from fixtures.images import BUSYBOX_REF, write_busybox_archive
from fixtures.server import start_server
from kybernetes.kubelet import runtime_cleanup as cleanup
from kybernetes.kubelet.containerd import ContainerdProcess
from kybernetes.kubelet.runtime_netns import bridge_conflist, create_netns, delete_netns, write_conflist

SUBNET = "10.88.78.0/24"


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    name = f"kyb-kl-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    srv = start_server(tmp_path_factory.mktemp("klsrv"), extra=("--disable-scheduler",))
    netns = None
    rt = None
    data_dir = tmp_path_factory.mktemp("kl")
    try:
        netns = create_netns(name)
        rt = ContainerdProcess(data_dir / "node", netns=netns, offline=True)
        write_conflist(rt.cni_conf_dir, bridge_conflist("kyb-kl", "kybkl0", SUBNET,
                                                        ipam_dir=rt.data_dir / "cni" / "ipam"))
        write_busybox_archive(rt.import_dir / "busybox.oci.tar", BUSYBOX_REF)
        asyncio.run(rt.start())
        yield {"srv": srv, "rt": rt, "name": name, "data_dir": data_dir}
    finally:
        if rt is not None:
            asyncio.run(rt.stop(remove_pods=True))
            rt.cleanup_leftovers()
        cleanup.remove_cgroup(name)
        if netns is not None:
            delete_netns(name)
        srv.stop()
        # pod volumes (tmpfs) a failed test left behind: unmount, then fail below
        leaked = cleanup.mounts_under(data_dir)
        cleanup.unmount_under(data_dir)
    assert not cleanup.cgroup_dirs(name)
    assert not leaked

