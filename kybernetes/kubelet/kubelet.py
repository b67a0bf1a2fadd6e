"""The kubelet: registers the node, heartbeats, watches the pods bound to it and runs them
through the CRI with pod workers, noticing container exits through a relisting PLEG.
Beside that: static pods from a manifest directory (mirror pods in the API), image
garbage collection, node-pressure eviction (kubelet.eviction), and the stats provider behind /stats/summary and /metrics/resource
(kybernetes.kubelet.stats.summary()/resource_metrics()).

    kl = Kubelet(client, runtime_endpoint, node_name="n1", data_dir=DIR)
    await kl.start()
    ...
    await kl.stop()
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Awaitable, Callable, Optional, Sequence

from kybernetes.api.goformat import go_quote
from kybernetes.client import Client, Informer
from kybernetes.cri import CRIClient
from kybernetes.kubelet.events import NORMAL, WARNING, EventRecorder
from kybernetes.kubelet.eviction import (DEFAULT_EVICTION_HARD, DEFAULT_MONITORING_PERIOD,
                                         DEFAULT_PRESSURE_TRANSITION_PERIOD, EvictionManager, Threshold,
                                         parse_thresholds)
from kybernetes.kubelet.eviction_localstorage import volume_usage
from kybernetes.kubelet.image_gc import ImageGCManager, ImageGCPolicy
from kybernetes.kubelet.images_airgap import airgap_images
from kybernetes.kubelet.images_pause import PAUSE_IMAGE
from kybernetes.kubelet.node_status import NodeStatusManager
from kybernetes.kubelet.pod_cidr import wait_pod_cidrs
from kybernetes.kubelet.pleg import PLEG
from kybernetes.kubelet.pod_workers import PodWorkers
from kybernetes.kubelet.service_env import ServiceEnv
from kybernetes.kubelet.static_pods import FILE_CHECK_FREQUENCY, StaticPods, is_mirror_pod, read_manifests
from kybernetes.kubelet.stats import StatsProvider, clear_provider, set_provider
from kybernetes.kubelet.sysctls import Allowlist
from kybernetes.kubelet.volumes import VolumeManager

log = logging.getLogger("kybernetes.kubelet")


class Kubelet:
    def __init__(self, client: Client, runtime_endpoint: str, *, node_name: str, data_dir: Path,
                 node_ip: Optional[str] = None, pod_log_root: Optional[Path] = None,
                 cgroup_root: str = "kubepods", status_interval: float = 10.0, lease_interval: float = 10.0,
                 pleg_period: float = 1.0, sync_frequency: float = 10.0, cluster_dns: Sequence[str] = (),
                 cluster_domain: str = "cluster.local", resolv_conf: str = "/etc/resolv.conf",
                 on_pod_cidr: Optional[Callable[[Optional[list[str]]], Awaitable[None]]] = None,
                 pod_cidr_timeout: float = 30.0, image_gc_policy: Optional[ImageGCPolicy] = None,
                 airgap_dir: Optional[Path] = None, sandbox_image: str = PAUSE_IMAGE,
                 static_pod_path: Optional[Path] = None, file_check_frequency: float = FILE_CHECK_FREQUENCY,
                 cert_source=None, client_ca: Optional[Path] = None, server_address: str = "0.0.0.0",
                 server_port: int = 10250, runtime_netns: Optional[str] = None,
                 eviction_hard: Optional[list[Threshold]] = None,
                 eviction_pressure_transition_period: float = DEFAULT_PRESSURE_TRANSITION_PERIOD,
                 eviction_monitoring_period: float = DEFAULT_MONITORING_PERIOD,
                 eviction_max_pod_grace_period: int = 0, local_storage_capacity_isolation: bool = True,
                 image_pull_backoff: float = 10.0, allowed_unsafe_sysctls: Sequence[str] = (),
                 log_dir: Path = Path("/var/log")):
        """`on_pod_cidr`, when given, is awaited at start with the node's podCIDRs (None if
        node IPAM set none within `pod_cidr_timeout`) before any pod runs: it writes the
        CNI config for that range.  Image GC follows `image_gc_policy` and spares the
        images recorded as air-gapped imports in `airgap_dir` and the `sandbox_image`.
        `static_pod_path` is a manifest directory of static pods (looked at every
        `file_check_frequency` seconds), shown in the API as mirror pods.
        With `cert_source` (see kubelet.server.app) and `client_ca`, the kubelet also serves its
        HTTPS API (logs, exec, attach, port-forward) on `server_address:server_port`;
        `runtime_netns` is the network namespace containerd's stream server listens in.
        `eviction_hard` are the eviction thresholds, hard and soft (eviction_thresholds.
        parse_threshold_config; upstream's hard defaults when None, none when empty), checked
        every `eviction_monitoring_period` seconds, with local storage limits enforced unless
        `local_storage_capacity_isolation` is False.  A failed image pull backs off from
        `image_pull_backoff` seconds, doubling to 300 s.  Pods may use the safe sysctls and
        those matching `allowed_unsafe_sysctls` (names or `prefix*` patterns).  The server shows
        `log_dir` under /logs/."""
        self.client = client
        self.on_pod_cidr = on_pod_cidr
        self.pod_cidr_timeout = pod_cidr_timeout
        self.pod_cidrs: Optional[list[str]] = None
        self.node_name = node_name
        self.data_dir = Path(data_dir)
        self.cri = CRIClient(runtime_endpoint)
        self.events = EventRecorder(client, node_name)
        self.node = NodeStatusManager(client, node_name, cri=self.cri, data_dir=self.data_dir, node_ip=node_ip,
                                      status_interval=status_interval, lease_interval=lease_interval)
        self.node.events = self.events
        # pod directories as upstream's /var/lib/kubelet/pods/<uid>/volumes/...
        self.volumes = VolumeManager(client, self.data_dir / "pods", node_allocatable=self.node.allocatable,
                                     node_name=node_name)
        self.workers = PodWorkers(client, self.cri, node_name=node_name, host_ip=self.node.node_ip,
                                  log_root=pod_log_root or self.data_dir / "pods", cgroup_root=cgroup_root,
                                  resync=sync_frequency, volumes=self.volumes, cluster_dns=cluster_dns,
                                  cluster_domain=cluster_domain, resolv_conf=resolv_conf,
                                  events=self.events, image_pull_backoff=image_pull_backoff)
        self.stats = StatsProvider(self.cri, node_name=node_name, data_dir=self.data_dir,
                                   log_root=pod_log_root or self.data_dir / "pods")
        self.image_gc = ImageGCManager(self.cri, policy=image_gc_policy, sandbox_image=sandbox_image,
                                       protected=(lambda: airgap_images(airgap_dir)) if airgap_dir else (lambda: ()))
        self.eviction = EvictionManager(
            self.stats.summary, parse_thresholds(DEFAULT_EVICTION_HARD) if eviction_hard is None else eviction_hard,
            active_pods=self._active_pods, evict=self._evict, reclaim_disk=self._reclaim_disk,
            on_pressure_change=self._pressure_changed, period=eviction_monitoring_period,
            transition_period=eviction_pressure_transition_period, max_pod_grace_period=eviction_max_pod_grace_period,
            volume_usage=(lambda pod: volume_usage(self.volumes.root, pod))
            if local_storage_capacity_isolation else None, pod_cleaned_up=self._pod_cleaned_up,
            node_event=lambda etype, reason, message: self.events.node_event(etype, reason, message))
        self.node.pressure = lambda: self.eviction.pressure
        self.sysctls = Allowlist(allowed_unsafe_sysctls)
        self.workers.admit = lambda pod: self.eviction.admit(pod) or self.sysctls.admit(pod)
        self.pleg = PLEG(self.cri, self.workers.wake, period=pleg_period)
        self.informer = Informer(client.resource("", "v1", "pods", namespaced=True),
                                 field_selector=f"spec.nodeName={node_name}", name=f"kubelet-pods-{node_name}")
        # every Service, for the containers' service environment variables
        self.services = Informer(client.resource("", "v1", "services", namespaced=True),
                                 name=f"kubelet-services-{node_name}")
        self.workers.service_env = ServiceEnv(self.services)
        self.informer.add_handlers(on_add=self._on_pod, on_update=lambda old, new: self._on_pod(new),
                                   on_delete=self._on_pod_deleted)
        self.static_pods: Optional[StaticPods] = None
        if static_pod_path is not None:
            self.static_pods = StaticPods(client, self.workers, directory=Path(static_pod_path), node_name=node_name,
                                          node_uid=lambda: self.node.node_uid or "",
                                          mirrors=lambda: [p for p in self.informer.list() if is_mirror_pod(p)],
                                          period=file_check_frequency)
        self.server = None
        if cert_source is not None and client_ca is not None:
            from kybernetes.kubelet.server.app import KubeletServer

            self.server = KubeletServer(self, cert_source=cert_source, client_ca=client_ca, address=server_address,
                                        port=server_port, runtime_netns=runtime_netns, log_dir=log_dir)
        self.started = False

    # ------------------------------------------------------------ eviction
    def _active_pods(self) -> list[dict]:
        """Pods the eviction manager may choose from: running here, not ending."""
        out = []
        for p in self.informer.list():
            if is_mirror_pod(p) or p["metadata"].get("deletionTimestamp"):
                continue
            if (p.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
                continue
            out.append(p)
        return out

    async def _evict(self, pod: dict, message: str, annotations: dict, grace: int = 0,
                     disruption_condition: bool = True) -> bool:
        if not self.workers.evict(pod["metadata"]["uid"], message, grace, disruption_condition):
            return False
        if self.workers.events is not None:
            self.workers.events.pod_event(pod, "Warning", "Evicted", message)
        return True

    def _pod_cleaned_up(self, pod: dict) -> bool:
        """An evicted pod is done once its worker wrote the final status (containers killed)."""
        w = self.workers.workers.get(pod["metadata"]["uid"])
        return w is None or w.done or (w.last_status or {}).get("phase") in ("Succeeded", "Failed")

    async def _reclaim_disk(self) -> None:
        try:
            await self.image_gc.garbage_collect()
        except Exception as e:  # noqa: BLE001 - not enough freed: pods go next
            log.info("image garbage collection under disk pressure: %s", e)

    def _pressure_changed(self) -> None:
        # the node's conditions follow at once, not at the next status period
        asyncio.ensure_future(self.node.update_status())

    async def _setup_qos_cgroups(self) -> None:
        """The QoS class cgroups under the pods' cgroup root, set up before pods start (as
        upstream's container manager does at start), announced on the node."""
        try:
            await self.workers.update_qos_cgroups()
        except OSError as e:  # not root, or no writable cgroup hierarchy
            log.warning("QoS cgroups not set up: %s", e)
            self.events.node_event(WARNING, "FailedNodeAllocatableEnforcement",
                                   f"Failed to update Node Allocatable Limits {go_quote(self.workers.cgroup_root)}: {e}")
            return
        self.events.node_event(NORMAL, "NodeAllocatableEnforced", "Updated Node Allocatable limit across pods")

    def _on_pod(self, pod: dict) -> None:
        if is_mirror_pod(pod):  # the static pod runs from its manifest; its mirror is only looked after
            if self.static_pods is not None:
                self.static_pods.kick()
            return
        self.workers.update(pod)

    def _on_pod_deleted(self, pod: dict) -> None:
        if is_mirror_pod(pod):
            if self.static_pods is not None:
                self.static_pods.kick()
            return
        self.workers.removed(pod)

    async def start(self) -> "Kubelet":
        self.events.node_event(NORMAL, "Starting", "Starting kubelet.")
        await self.cri.wait_ready(60)
        if self.server is not None:
            self.node.kubelet_port = await self.server.start()
        await self.node.register()
        self.node.start()
        if self.on_pod_cidr is not None:
            self.pod_cidrs = await wait_pod_cidrs(self.client, self.node_name, self.pod_cidr_timeout)
            await self.on_pod_cidr(self.pod_cidrs)
        self.services.start()
        self.informer.start()
        await self.informer.wait_synced(60)
        await self._setup_qos_cgroups()
        known = {p["metadata"]["uid"] for p in self.informer.list()}
        if self.static_pods is not None:  # static pods run under their own uids (not their mirrors')
            known |= set((await asyncio.to_thread(read_manifests, self.static_pods.directory, self.node_name))[0])
        # pods deleted while the kubelet was down still run in the runtime: kill them first
        await self.workers.kill_orphans(known)
        orphans = await self.volumes.cleanup_orphans({p["metadata"]["uid"] for p in self.informer.list()})
        if orphans:
            log.info("removed the volumes of %d pods that are gone", len(orphans))
        self.pleg.start()
        self.image_gc.start()
        self.eviction.start()
        if self.static_pods is not None:
            self.static_pods.start()
        set_provider(self.stats)
        self.started = True
        log.info("kubelet for node %s started (runtime %s)", self.node_name, self.node.runtime_version)
        return self

    async def stop(self) -> None:
        """Stop watching and syncing; pods keep running in the runtime (its owner removes them)."""
        if self.server is not None:
            await self.server.stop()
        clear_provider(self.stats)
        if self.static_pods is not None:
            await self.static_pods.stop()
        await self.eviction.stop()
        await self.image_gc.stop()
        await self.pleg.stop()
        await self.informer.stop()
        await self.services.stop()
        await self.workers.stop()
        await self.node.stop()
        try:  # the events still being written (the client closes after this)
            await asyncio.wait_for(self.events.flush(), 5)
        except asyncio.TimeoutError:
            pass
        await self.cri.close()
        self.started = False
