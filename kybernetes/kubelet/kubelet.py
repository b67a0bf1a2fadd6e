"""The kubelet: registers the node, heartbeats, watches the pods bound to it and runs them
through the CRI with pod workers, noticing container exits through a relisting PLEG.

    kl = Kubelet(client, runtime_endpoint, node_name="n1", data_dir=DIR)
    await kl.start()
    ...
    await kl.stop()
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional, Sequence

from kybernetes.client import Client, Informer
from kybernetes.cri import CRIClient
from kybernetes.kubelet.events import EventRecorder
from kybernetes.kubelet.node_status import NodeStatusManager
from kybernetes.kubelet.pleg import PLEG
from kybernetes.kubelet.pod_workers import PodWorkers
from kybernetes.kubelet.volumes import VolumeManager

log = logging.getLogger("kybernetes.kubelet")


class Kubelet:
    def __init__(self, client: Client, runtime_endpoint: str, *, node_name: str, data_dir: Path,
                 node_ip: Optional[str] = None, pod_log_root: Optional[Path] = None,
                 cgroup_root: str = "kubepods", status_interval: float = 10.0, lease_interval: float = 10.0,
                 pleg_period: float = 1.0, sync_frequency: float = 10.0, cluster_dns: Sequence[str] = (),
                 cluster_domain: str = "cluster.local", resolv_conf: str = "/etc/resolv.conf",
                 cert_source=None, client_ca: Optional[Path] = None, server_address: str = "0.0.0.0",
                 server_port: int = 10250, runtime_netns: Optional[str] = None):
        """With `cert_source` (see kubelet.server.app) and `client_ca`, the kubelet also serves its
        HTTPS API (logs, exec, attach, port-forward) on `server_address:server_port`;
        `runtime_netns` is the network namespace containerd's stream server listens in."""
        self.client = client
        self.node_name = node_name
        self.data_dir = Path(data_dir)
        self.cri = CRIClient(runtime_endpoint)
        self.node = NodeStatusManager(client, node_name, cri=self.cri, data_dir=self.data_dir, node_ip=node_ip,
                                      status_interval=status_interval, lease_interval=lease_interval)
        # pod directories as upstream's /var/lib/kubelet/pods/<uid>/volumes/...
        self.volumes = VolumeManager(client, self.data_dir / "pods", node_allocatable=self.node.allocatable)
        self.workers = PodWorkers(client, self.cri, node_name=node_name, host_ip=self.node.node_ip,
                                  log_root=pod_log_root or self.data_dir / "pods", cgroup_root=cgroup_root,
                                  resync=sync_frequency, volumes=self.volumes, cluster_dns=cluster_dns,
                                  cluster_domain=cluster_domain, resolv_conf=resolv_conf,
                                  events=EventRecorder(client, node_name))
        self.pleg = PLEG(self.cri, self.workers.wake, period=pleg_period)
        self.informer = Informer(client.resource("", "v1", "pods", namespaced=True),
                                 field_selector=f"spec.nodeName={node_name}", name=f"kubelet-pods-{node_name}")
        self.informer.add_handlers(on_add=self._on_pod, on_update=lambda old, new: self._on_pod(new),
                                   on_delete=self.workers.removed)
        self.server = None
        if cert_source is not None and client_ca is not None:
            from kybernetes.kubelet.server.app import KubeletServer

            self.server = KubeletServer(self, cert_source=cert_source, client_ca=client_ca, address=server_address,
                                        port=server_port, runtime_netns=runtime_netns)
        self.started = False

    def _on_pod(self, pod: dict) -> None:
        self.workers.update(pod)

    async def start(self) -> "Kubelet":
        await self.cri.wait_ready(60)
        if self.server is not None:
            self.node.kubelet_port = await self.server.start()
        await self.node.register()
        self.node.start()
        self.informer.start()
        await self.informer.wait_synced(60)
        orphans = await self.volumes.cleanup_orphans({p["metadata"]["uid"] for p in self.informer.list()})
        if orphans:
            log.info("removed the volumes of %d pods that are gone", len(orphans))
        self.pleg.start()
        self.started = True
        log.info("kubelet for node %s started (runtime %s)", self.node_name, self.node.runtime_version)
        return self

    async def stop(self) -> None:
        """Stop watching and syncing; pods keep running in the runtime (its owner removes them)."""
        if self.server is not None:
            await self.server.stop()
        await self.pleg.stop()
        await self.informer.stop()
        await self.workers.stop()
        await self.node.stop()
        await self.cri.close()
        self.started = False
