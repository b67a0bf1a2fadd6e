"""The API server publishes its own address behind the `default/kubernetes` Service, as
upstream's lease endpoint reconciler (pkg/controlplane/reconcilers/lease.go) does, and keeps
that Service itself in shape, as upstream's kubernetes-service controller does.

Every server keeps a short-lived lease in the datastore (under `/registry/masterleases/`,
outside the API like upstream's) and, on start and every `interval` seconds, writes the
`default/kubernetes` Endpoints and EndpointSlice to list the addresses of all servers whose
leases are live. A server removes only its own lease when it stops, and its address only
when no other live server shares it, so several servers never take each other's addresses
away; leases of servers that died simply expire.

The Endpoints and EndpointSlice controllers leave these objects alone: the `kubernetes`
Service has no selector. The same rounds recreate the Service (on its fixed cluster IP) when
someone deletes it, and put back its ports and type when someone changes them; other edits
(labels, annotations) stay, as upstream.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import time
import uuid
from dataclasses import dataclass
from typing import Any, Optional

import orjson

from kybernetes.client.errors import AlreadyExists, Conflict, NotFound
from kybernetes.storage.interface import ConflictError, KeyExistsError, KeyNotFoundError, Store

log = logging.getLogger("kybernetes.apiserver.endpoints")

Obj = dict[str, Any]

LEASE_PREFIX = "/registry/masterleases/"
NAMESPACE = "default"
NAME = "kubernetes"
PORT_NAME = "https"
SKIP_MIRROR_LABEL = "endpointslice.kubernetes.io/skip-mirror"
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
FIELD_MANAGER = "kube-apiserver"
INTERVAL = 10.0  # upstream --endpoint-reconciler interval
LEASE_TTL = 15.0  # upstream master lease TTL


@dataclass(frozen=True)
class Lease:
    """One server's claim: its address and secure port, valid until `expires` (unix time)."""

    ip: str
    port: int
    holder: str
    expires: float


def lease_key(ip: str, holder: str) -> str:
    return f"{LEASE_PREFIX}{ip}/{holder}"


def address_type(ips: list[str]) -> str:
    """IPv6 only when every address is IPv6 (upstream endpointSliceFromEndpoints)."""
    if ips and all(ipaddress.ip_address(ip).version == 6 for ip in ips):
        return "IPv6"
    return "IPv4"


def desired_endpoints(ips: list[str], port: int) -> Obj:
    """The Endpoints upstream's reconciler writes: one subset, every server ready."""
    return {"apiVersion": "v1", "kind": "Endpoints",
            "metadata": {"name": NAME, "namespace": NAMESPACE, "labels": {SKIP_MIRROR_LABEL: "true"}},
            "subsets": [{"addresses": [{"ip": ip} for ip in ips],
                         "ports": [{"name": PORT_NAME, "port": port, "protocol": "TCP"}]}]}


def desired_slice(ips: list[str], port: int) -> Obj:
    """The EndpointSlice mirrored from those Endpoints, as upstream's EndpointsAdapter writes it."""
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": NAME, "namespace": NAMESPACE, "labels": {SERVICE_NAME_LABEL: NAME}},
            "addressType": address_type(ips),
            "endpoints": [{"addresses": [ip], "conditions": {"ready": True}} for ip in ips],
            "ports": [{"name": PORT_NAME, "port": port, "protocol": "TCP"}]}


def desired_service_ports(port: int) -> list[Obj]:
    """The one port upstream gives the `kubernetes` Service: https on 443 to the secure port."""
    return [{"name": PORT_NAME, "protocol": "TCP", "port": 443, "targetPort": port}]


def desired_service(cluster_ip: str, port: int) -> Obj:
    """The `kubernetes` Service as upstream's controller creates it: no selector, single-stack."""
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": NAME, "namespace": NAMESPACE,
                         "labels": {"component": "apiserver", "provider": "kubernetes"}},
            "spec": {"type": "ClusterIP", "clusterIP": cluster_ip, "ipFamilyPolicy": "SingleStack",
                     "sessionAffinity": "None", "ports": desired_service_ports(port)}}


def service_needs_reset(svc: Obj, port: int) -> bool:
    """Upstream resets the Service when its type or any field of its ports differs."""
    spec = svc.get("spec") or {}
    return spec.get("type") != "ClusterIP" or spec.get("ports") != desired_service_ports(port)


def choose(leases: list[Lease]) -> tuple[list[str], int]:
    """(sorted distinct addresses, port) of the live leases; the port comes from the first
    lease in a fixed order, so servers that disagree on it never fight over the objects."""
    ordered = sorted(leases, key=lambda le: (ipaddress.ip_address(le.ip).packed, le.holder))
    ips = sorted({le.ip for le in leases}, key=lambda ip: ipaddress.ip_address(ip).packed)
    return ips, (ordered[0].port if ordered else 0)


class EndpointReconciler:
    """Keeps this server's address in `default/kubernetes` (Endpoints and EndpointSlice), and the
    Service itself on `service_ip` when one is given."""

    def __init__(self, store: Store, client: Any, ip: str, port: int, *, interval: float = INTERVAL,
                 ttl: float = LEASE_TTL, holder: Optional[str] = None, service_ip: Optional[str] = None) -> None:
        self.store = store
        self.client = client
        self.ip = str(ipaddress.ip_address(ip))
        self.port = port
        self.interval = interval
        self.ttl = ttl
        self.holder = holder or uuid.uuid4().hex
        self._task: Optional[asyncio.Task] = None
        self._endpoints = client.resource("", "v1", "endpoints")
        self._slices = client.resource("discovery.k8s.io", "v1", "endpointslices")
        self.service_ip = service_ip
        self._services = client.resource("", "v1", "services") if service_ip else None

    async def start(self) -> None:
        """Publish once now, then keep refreshing in the background."""
        await self._round()
        self._task = asyncio.create_task(self._loop(), name="endpoint-reconciler")

    async def stop(self) -> None:
        """Stop refreshing, give up this server's lease and take its address out, unless
        another live server has the same address."""
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        try:
            kv = await self.store.get(lease_key(self.ip, self.holder))
            if kv is not None:
                await self.store.delete(kv.key, kv.mod_revision)
            await self.reconcile(await self.live_leases())
        except Exception as e:  # datastore or API errors: shutting down regardless
            log.warning("could not remove this server from default/kubernetes: %s", e)

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            await self._round()

    async def _round(self) -> None:
        try:
            await self.renew()
            leases = await self.live_leases()
        except asyncio.CancelledError:
            raise
        except Exception as e:  # keep the loop alive through datastore hiccups
            log.warning("endpoint reconciler: %s", e)
            return
        # the Service and its endpoints each get their chance, whatever befalls the other
        for step in (self.reconcile_service, self.reconcile):
            try:
                await step(leases)
            except (Conflict, AlreadyExists, NotFound):
                pass  # someone else wrote meanwhile: the next round sees it
            except asyncio.CancelledError:
                raise
            except Exception as e:  # keep the loop alive through API hiccups
                log.warning("endpoint reconciler: %s", e)

    # ----------------------------------------------------------------- leases
    async def renew(self) -> None:
        """Create or extend this server's lease."""
        key = lease_key(self.ip, self.holder)
        value = orjson.dumps({"ip": self.ip, "port": self.port, "holder": self.holder,
                              "expires": time.time() + self.ttl})
        kv = await self.store.get(key)
        try:
            if kv is None:
                await self.store.create(key, value)
            else:
                await self.store.update(key, value, kv.mod_revision)
        except (KeyExistsError, ConflictError, KeyNotFoundError):
            pass  # only this server writes this key; a lost race is retried next round

    async def live_leases(self) -> list[Lease]:
        """Leases that have not expired; expired ones are removed on the way."""
        now = time.time()
        out: list[Lease] = []
        res = await self.store.list(LEASE_PREFIX)
        for kv in res.items:
            try:
                d = orjson.loads(kv.value)
                lease = Lease(str(ipaddress.ip_address(d["ip"])), int(d["port"]), str(d["holder"]), float(d["expires"]))
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                lease = None
            if lease is not None and lease.expires > now:
                out.append(lease)
                continue
            try:
                await self.store.delete(kv.key, kv.mod_revision)
            except (KeyNotFoundError, ConflictError):
                pass
        return out

    # ----------------------------------------------------------------- objects
    async def reconcile(self, leases: list[Lease]) -> None:
        """Make the Endpoints and the EndpointSlice list exactly the live servers. With no live
        server at all nothing is written: upstream refuses to erase every address."""
        if not leases:
            return
        ips, port = choose(leases)
        await self._converge(self._endpoints, desired_endpoints(ips, port), ("subsets",))
        await self._converge(self._slices, desired_slice(ips, port), ("addressType", "endpoints", "ports"))

    async def reconcile_service(self, leases: list[Lease]) -> None:
        """Recreate a deleted `kubernetes` Service; reset its ports and type if they were changed."""
        if self._services is None or self.service_ip is None or not leases:
            return
        _, port = choose(leases)
        try:
            have = await self._services.get(NAME, NAMESPACE)
        except NotFound:
            log.warning("recreating the default/kubernetes Service")
            await self._services.create(desired_service(self.service_ip, port), NAMESPACE,
                                        field_manager=FIELD_MANAGER)
            return
        if not service_needs_reset(have, port):
            return
        log.warning("resetting the ports and type of the default/kubernetes Service")
        spec = dict(have.get("spec") or {})
        spec["type"] = "ClusterIP"
        spec["ports"] = desired_service_ports(port)
        await self._services.update(dict(have, spec=spec), NAMESPACE, field_manager=FIELD_MANAGER)

    async def _converge(self, handle: Any, want: Obj, fields: tuple[str, ...]) -> None:
        try:
            have = await handle.get(NAME, NAMESPACE)
        except NotFound:
            await handle.create(want, NAMESPACE, field_manager=FIELD_MANAGER)
            return
        labels = dict(have["metadata"].get("labels") or {})
        same = all(have.get(f) == want.get(f) for f in fields) and \
            all(labels.get(k) == v for k, v in want["metadata"]["labels"].items())
        if same:
            return
        new = dict(have)
        for f in fields:
            new[f] = want[f]
        # other labels stay; ours are restored if someone removed them
        new["metadata"] = dict(have["metadata"], labels={**labels, **want["metadata"]["labels"]})
        await handle.update(new, NAMESPACE, field_manager=FIELD_MANAGER)
