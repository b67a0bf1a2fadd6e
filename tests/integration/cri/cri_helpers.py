"""Helpers for the CRI tests: a real containerd, inside a network namespace of its own.

The namespace has only `lo` and the CNI bridge containerd's plugins create; it has
no uplink and no default route, so no packet from a pod (or from containerd's
pulls, which only target the registry we run inside it) can leave this machine.
Everything is removed at teardown: pods (through CRI), containerd (by PID), shims,
mounts under the data dir, the test cgroup tree, the registry, the namespace.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from kybernetes.cri import pb
from kybernetes.kubelet import runtime_cleanup as cleanup
from kybernetes.kubelet.containerd import ContainerdProcess
from kybernetes.kubelet.runtime_netns import bridge_conflist, create_netns, delete_netns, write_conflist

from fixtures.images import BUSYBOX_REF, LocalRegistry, write_busybox_archive

SUBNET = "10.88.77.0/24"


@dataclass
class Node:
    name: str
    netns: Path
    data_dir: Path
    rt: ContainerdProcess
    cgroup_root: str
    registry: Optional[LocalRegistry] = None
    auth_registry: Optional[LocalRegistry] = None
    auth_user: tuple[str, str] = ("kyb", "s3cret-pass")
    pods: list = field(default_factory=list)

    def cgroup_parent(self, uid: str) -> str:
        return f"/{self.cgroup_root}/pod{uid}"


def short_dir(tmp_path_factory, prefix: str) -> Path:
    # Keep unix socket paths short (108-byte limit).
    return tmp_path_factory.mktemp(prefix, numbered=True)


def start_node(tmp_path_factory, tag: str, *, registries: bool = False, **rt_options) -> Node:
    name = f"kyb-{tag}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    netns = create_netns(name)
    data_dir = short_dir(tmp_path_factory, tag)
    node = Node(name=name, netns=netns, data_dir=data_dir, rt=None, cgroup_root=name)  # type: ignore[arg-type]
    try:
        if registries:
            node.registry = LocalRegistry(data_dir / "registry", port=5000, netns=str(netns)).start()
            node.auth_registry = LocalRegistry(data_dir / "registry-auth", port=5001, netns=str(netns),
                                               users={node.auth_user[0]: node.auth_user[1]}).start()
        rt = ContainerdProcess(data_dir / "node", netns=netns, offline=True,
                               insecure_registries=[r.host for r in (node.registry, node.auth_registry) if r],
                               **rt_options)
        node.rt = rt
        write_conflist(rt.cni_conf_dir, bridge_conflist("kyb-test", "kybtest0", SUBNET,
                                                        ipam_dir=rt.data_dir / "cni" / "ipam"))
        write_busybox_archive(rt.import_dir / "busybox.oci.tar", BUSYBOX_REF)
        asyncio.run(rt.start())
    except BaseException:
        stop_node(node)
        raise
    return node


def stop_node(node: Node) -> None:
    try:
        if node.rt is not None:
            asyncio.run(node.rt.stop(remove_pods=True))
            node.rt.cleanup_leftovers()
    finally:
        cleanup.remove_cgroup(node.cgroup_root)
        for r in (node.registry, node.auth_registry):
            if r is not None:
                r.stop()
        delete_netns(node.name)


def sandbox_config(node: Node, name: str, *, uid: Optional[str] = None) -> pb.PodSandboxConfig:
    uid = uid or str(uuid.uuid4())
    log_dir = node.rt.pod_log_root / f"default_{name}_{uid}"
    log_dir.mkdir(parents=True, exist_ok=True)  # the kubelet creates it before RunPodSandbox
    return pb.PodSandboxConfig(
        metadata=pb.PodSandboxMetadata(name=name, uid=uid, namespace="default", attempt=0),
        hostname=name,
        log_directory=str(log_dir),
        labels={"io.kubernetes.pod.name": name, "io.kubernetes.pod.uid": uid, "kyb-test": "1"},
        linux=pb.LinuxPodSandboxConfig(
            cgroup_parent=node.cgroup_parent(uid),
            security_context=pb.LinuxSandboxSecurityContext(
                namespace_options=pb.NamespaceOption(network=pb.POD, pid=pb.CONTAINER, ipc=pb.POD)),
        ),
    )


def busybox_container(name: str, script: str, *, image: str = BUSYBOX_REF, memory: int = 0,
                      cpu_shares: int = 0) -> pb.ContainerConfig:
    return pb.ContainerConfig(
        metadata=pb.ContainerMetadata(name=name, attempt=0),
        image=pb.ImageSpec(image=image),
        command=["/bin/sh", "-c", script],
        envs=[pb.KeyValue(key="GREETING", value=b"hello")],
        log_path=f"{name}/0.log",
        labels={"io.kubernetes.container.name": name},
        linux=pb.LinuxContainerConfig(resources=pb.LinuxContainerResources(
            memory_limit_in_bytes=memory, cpu_shares=cpu_shares)),
    )
