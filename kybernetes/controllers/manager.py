"""The controller manager: runs a set of controllers over one client and one set of
shared informers, while this process leads.

Leader election is a seam: `LeaderElector.run(on_started_leading, on_stopped_leading)`.
Today's default, `AlwaysLeader`, leads at once and forever (one control plane).  A
Lease-based elector (coordination.k8s.io/v1) plugs in without changing anything else.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any, Awaitable, Callable, Optional, Protocol, Sequence, Union

from kybernetes.client.rest import Client
from kybernetes.controllers.base import Controller, InformerFactory

__all__ = [
    "ControllerFactory",
    "ControllerManager",
    "LeaderElector",
    "AlwaysLeader",
    "default_controllers",
    "start_controller_manager",
]

log = logging.getLogger("kybernetes.controllers.manager")

ControllerFactory = Callable[[Client, InformerFactory], Controller]
Callback = Callable[[], Awaitable[None]]


class LeaderElector(Protocol):
    async def run(self, on_started_leading: Callback, on_stopped_leading: Callback) -> None:
        """Campaign; call on_started_leading when elected and on_stopped_leading when
        leadership is lost (or on cancellation while leading).  Runs until cancelled."""


class AlwaysLeader:
    """No election: this process is the only controller manager."""

    async def run(self, on_started_leading: Callback, on_stopped_leading: Callback) -> None:
        await on_started_leading()
        try:
            await asyncio.Event().wait()
        finally:
            await asyncio.shield(on_stopped_leading())


def default_controllers(*, root_ca: Optional[bytes] = None, node_monitor_grace_period: Optional[float] = None,
                        cluster_cidr: str = "10.42.0.0/16",
                        node_cidr_mask_size: Optional[int] = None) -> list[ControllerFactory]:
    """The controllers `kyb server` runs.  `root_ca` (the cluster CA PEM) enables the
    root CA publisher; without it that controller is left out.  `node_monitor_grace_period`
    (seconds) overrides the node lifecycle controller's (upstream --node-monitor-grace-period).
    `cluster_cidr` and `node_cidr_mask_size` configure node IPAM (spec.podCIDR of every node)."""
    from functools import partial

    from kybernetes.controllers.clusterrole_aggregation import ClusterRoleAggregationController
    from kybernetes.controllers.cronjob import CronJobController
    from kybernetes.controllers.csrapproving import CSRApprovingController
    from kybernetes.controllers.csrcleaner import CSRCleanerController
    from kybernetes.controllers.daemonset import DaemonSetController
    from kybernetes.controllers.deployment import DeploymentController
    from kybernetes.controllers.disruption import DisruptionController
    from kybernetes.controllers.endpoints import EndpointsController
    from kybernetes.controllers.endpointslice import EndpointSliceController
    from kybernetes.controllers.garbagecollector import GarbageCollector
    from kybernetes.controllers.horizontalpodautoscaler import HorizontalPodAutoscalerController
    from kybernetes.controllers.job import JobController
    from kybernetes.controllers.namespace import NamespaceController
    from kybernetes.controllers.nodeipam import NodeIpamController, cidr_sets
    from kybernetes.controllers.nodelifecycle import NodeLifecycleController, TaintEvictionController
    from kybernetes.controllers.persistentvolume import PersistentVolumeController
    from kybernetes.controllers.podgc import PodGCController
    from kybernetes.controllers.pvcprotection import PVCProtectionController
    from kybernetes.controllers.pvprotection import PVProtectionController
    from kybernetes.controllers.replicaset import ReplicaSetController, ReplicationManager
    from kybernetes.controllers.resourcequota import ResourceQuotaController
    from kybernetes.controllers.rootca import RootCACertPublisher
    from kybernetes.controllers.serviceaccounts import ServiceAccountsController
    from kybernetes.controllers.statefulset import StatefulSetController

    out: list[ControllerFactory] = [
        NamespaceController, ServiceAccountsController, ClusterRoleAggregationController, GarbageCollector,
        ReplicaSetController, ReplicationManager, DeploymentController, StatefulSetController, DaemonSetController,
        JobController, CronJobController, ResourceQuotaController, DisruptionController,
        EndpointsController, EndpointSliceController, NodeLifecycleController, TaintEvictionController, PodGCController,
        HorizontalPodAutoscalerController, CSRApprovingController, CSRCleanerController,
        PersistentVolumeController, PVCProtectionController, PVProtectionController,
    ]
    if node_monitor_grace_period is not None:
        out[out.index(NodeLifecycleController)] = partial(NodeLifecycleController, grace_period=node_monitor_grace_period)
    cidr_sets(cluster_cidr, node_cidr_mask_size)  # bad --cluster-cidr/--node-cidr-mask-size fail here, at start
    out.append(partial(NodeIpamController, cluster_cidr=cluster_cidr, node_cidr_mask_size=node_cidr_mask_size))
    if root_ca:
        out.append(partial(RootCACertPublisher, root_ca=root_ca))
    return out


class ControllerManager:
    """Starts and stops controllers.  `controllers` holds factories (a Controller
    subclass is one: called as cls(client, informers)) or ready instances."""

    def __init__(
        self,
        client: Client,
        controllers: Optional[Sequence[Union[ControllerFactory, Controller]]] = None,
        *,
        leader_elector: Optional[LeaderElector] = None,
        resync: float = 0,
        close_client: bool = False,
        client_builder: Any = None,
    ) -> None:
        """`client_builder` (an SAClientBuilder) gives each controller its own service
        account's client; without it every controller shares `client`."""
        self.client = client
        self.client_builder = client_builder
        self.specs = list(controllers) if controllers is not None else default_controllers()
        self.leader_elector: LeaderElector = leader_elector or AlwaysLeader()
        self.resync = resync
        self.close_client = close_client
        self.informers: Optional[InformerFactory] = None
        self.controllers: list[Controller] = []
        self._elector_task: Optional[asyncio.Task[None]] = None
        self._leading = asyncio.Event()
        self._startup_error: Optional[BaseException] = None

    async def _start_controllers(self) -> None:
        informers = InformerFactory(self.client, resync=self.resync)
        built: list[Controller] = []
        try:
            for spec in self.specs:
                ctl = spec if isinstance(spec, Controller) else spec(await self._client_for(spec), informers)
                built.append(ctl)
        except BaseException as e:  # e.g. no token for a controller's service account
            self._startup_error = e
            self._leading.set()
            raise
        self.informers, self.controllers = informers, built
        informers.start()
        try:
            await asyncio.gather(*(c.start() for c in built))
        except BaseException as e:
            self._startup_error = e
            await self._stop_controllers()
            self._leading.set()
            raise
        log.info("controller manager: running %s", ", ".join(c.name for c in built))
        self._leading.set()

    async def _client_for(self, spec: Any) -> Client:
        if self.client_builder is None:
            return self.client
        from kybernetes.controllers.clientbuilder import RUNS_AS_MANAGER, service_account_for

        if (getattr(spec, "name", None) or getattr(getattr(spec, "func", None), "name", None)) in RUNS_AS_MANAGER:
            return self.client
        sa = service_account_for(spec)
        if sa is None:
            log.warning("controller manager: no service account known for %r; it runs as the manager", spec)
            return self.client
        return await self.client_builder.client_for(sa)

    async def _stop_controllers(self) -> None:
        controllers, self.controllers = self.controllers, []
        await asyncio.gather(*(c.stop() for c in controllers), return_exceptions=True)
        if self.informers is not None:
            await self.informers.stop()
            self.informers = None

    async def start(self, *, wait_leading: bool = True) -> None:
        """Begin campaigning; by default wait until the controllers run (with
        AlwaysLeader: at once)."""
        if self._elector_task is None:
            self._elector_task = asyncio.get_running_loop().create_task(
                self.leader_elector.run(self._start_controllers, self._stop_controllers),
                name="controller-manager leader election")
        if wait_leading:
            waiter = asyncio.ensure_future(self._leading.wait())
            await asyncio.wait({waiter, self._elector_task}, return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
            if self._startup_error is not None:
                raise self._startup_error
            if self._elector_task.done() and self._elector_task.exception() is not None:
                raise self._elector_task.exception()  # type: ignore[misc]

    async def stop(self) -> None:
        """Stop the controllers and (if it owns it) close the client."""
        task, self._elector_task = self._elector_task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
            except Exception:  # noqa: BLE001
                log.exception("controller manager: leader election ended with an error")
        await self._stop_controllers()
        if self.client_builder is not None:
            await self.client_builder.close()
        if self.close_client:
            await self.client.close()

    async def run(self) -> None:
        """Start and run until cancelled."""
        await self.start()
        try:
            await asyncio.Event().wait()
        finally:
            await self.stop()

    def controller(self, name: str) -> Optional[Controller]:
        return next((c for c in self.controllers if c.name == name), None)


async def start_controller_manager(
    source: Union[Client, str, Path],
    *,
    controllers: Optional[Sequence[Union[ControllerFactory, Controller]]] = None,
    leader_elector: Optional[LeaderElector] = None,
    service_account_credentials: bool = False,
) -> ControllerManager:
    """What `kyb server` calls: a running ControllerManager for a kubeconfig path (the
    manager then owns and closes its client) or a Client.  `await m.stop()` ends it."""
    if isinstance(source, Client):
        client, own = source, False
    else:
        client, own = Client.from_kubeconfig(source), True
        if controllers is None:
            # the kubeconfig's certificate-authority is the cluster CA the publisher spreads
            from kybernetes.client.kubeconfig import load_kubeconfig

            controllers = default_controllers(root_ca=load_kubeconfig(source).ca_pem)
    builder = None
    if service_account_credentials:
        from kybernetes.controllers.clientbuilder import SAClientBuilder

        if isinstance(source, Client):
            raise ValueError("service_account_credentials needs a kubeconfig path")
        builder = SAClientBuilder(source, client)
    manager = ControllerManager(client, controllers, leader_elector=leader_elector, close_client=own,
                                client_builder=builder)
    try:
        await manager.start()
    except BaseException:
        await manager.stop()
        raise
    return manager
