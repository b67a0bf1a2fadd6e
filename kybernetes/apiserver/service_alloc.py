"""Cluster IPs and node ports for Services, allocated when a Service is created.

Cluster IPs are recorded as networking.k8s.io/v1 IPAddress objects named by the address
(as upstream's IPAddress-based allocator does), so two API servers on one datastore can
never hand out the same address: creating the IPAddress is the atomic claim.  Node ports
are claimed the same way under an internal key range.
"""

from __future__ import annotations

import ipaddress
import random
from typing import Any, Optional

from kybernetes.apiserver import errors
from kybernetes.apiserver.objects import ObjectStore
from kybernetes.registry.base import Cause
from kybernetes.storage.interface import KeyExistsError, KeyNotFoundError

Obj = dict[str, Any]

DEFAULT_SERVICE_CIDR = "10.43.0.0/16"
NODE_PORT_RANGE = (30000, 32767)
_IPADDRESS_PREFIX = "/registry/networking.k8s.io/ipaddresses/"
_NODEPORT_PREFIX = "/registry/ranges/servicenodeports/"
_TRIES = 64


class ServiceAllocator:
    """Claims and releases Service cluster IPs and node ports in the datastore."""

    def __init__(self, objects: ObjectStore, cidr: str = DEFAULT_SERVICE_CIDR) -> None:
        self.objects = objects
        self.network = ipaddress.ip_network(cidr)
        self._rng = random.Random()

    @property
    def kubernetes_service_ip(self) -> str:
        """The first address of the range belongs to the `kubernetes` Service."""
        return str(self.network.network_address + 1)

    # ------------------------------------------------------------------ cluster IPs
    def _ipaddress_object(self, ip: str, svc: Obj) -> Obj:
        from kybernetes.api.meta import now_rfc3339
        import uuid

        meta = svc["metadata"]
        return {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "IPAddress",
            "metadata": {
                "name": ip,
                "uid": str(uuid.uuid4()),
                "creationTimestamp": now_rfc3339(),
                "labels": {"ipaddress.kubernetes.io/ip-family": "IPv6" if ":" in ip else "IPv4",
                           "ipaddress.kubernetes.io/managed-by": "ipallocator.k8s.io"},
            },
            "spec": {"parentRef": {"group": "", "resource": "services",
                                   "namespace": meta.get("namespace", ""), "name": meta["name"]}},
        }

    async def _claim_ip(self, ip: str, svc: Obj) -> bool:
        key = _IPADDRESS_PREFIX + ip
        try:
            await self.objects.store.create(key, self.objects.encode(key, self._ipaddress_object(ip, svc)))
            return True
        except KeyExistsError:
            return False

    async def _allocate_ip(self, svc: Obj, requested: str) -> str:
        if requested:
            try:
                addr = ipaddress.ip_address(requested)
            except ValueError:
                raise _invalid(svc, "spec.clusterIPs[0]", requested, "must be a valid IP address") from None
            if addr not in self.network or addr in (self.network.network_address, self.network.broadcast_address):
                raise _invalid(svc, "spec.clusterIPs[0]", requested,
                               f"failed to allocate IP {requested}: the provided IP ({requested}) is not in the valid range. "
                               f"The range of valid IPs is {self.network}")
            if not await self._claim_ip(requested, svc):
                raise _invalid(svc, "spec.clusterIPs[0]", requested,
                               f"failed to allocate IP {requested}: provided IP is already allocated")
            return requested
        size = self.network.num_addresses
        # skip the network address and the kubernetes service address (offset 1)
        for _ in range(_TRIES):
            offset = self._rng.randrange(2, size - 1)
            ip = str(self.network.network_address + offset)
            if await self._claim_ip(ip, svc):
                return ip
        for offset in range(2, size - 1):
            ip = str(self.network.network_address + offset)
            if await self._claim_ip(ip, svc):
                return ip
        raise errors.APIError(500, "InternalError", "Internal error occurred: failed to allocate a serviceIP: range is full")

    async def release_ip(self, ip: str) -> None:
        if not ip or ip == "None":
            return
        try:
            await self.objects.store.delete(_IPADDRESS_PREFIX + ip)
        except KeyNotFoundError:
            pass

    # ------------------------------------------------------------------ node ports
    async def _claim_port(self, port: int, svc: Obj) -> bool:
        key = f"{_NODEPORT_PREFIX}{port}"
        meta = svc["metadata"]
        try:
            await self.objects.store.create(key, f"{meta.get('namespace', '')}/{meta['name']}".encode())
            return True
        except KeyExistsError:
            return False

    async def _allocate_port(self, svc: Obj, requested: int, path: str) -> int:
        lo, hi = NODE_PORT_RANGE
        if requested:
            if not lo <= requested <= hi:
                raise _invalid(svc, path, requested, f"provided port is not in the valid range. The range of valid ports is {lo}-{hi}")
            if not await self._claim_port(requested, svc):
                raise _invalid(svc, path, requested, "provided port is already allocated")
            return requested
        for _ in range(_TRIES):
            port = self._rng.randint(lo, hi)
            if await self._claim_port(port, svc):
                return port
        for port in range(lo, hi + 1):
            if await self._claim_port(port, svc):
                return port
        raise errors.APIError(500, "InternalError", "Internal error occurred: failed to allocate a nodePort: range is full")

    async def release_port(self, port: int) -> None:
        try:
            await self.objects.store.delete(f"{_NODEPORT_PREFIX}{port}")
        except KeyNotFoundError:
            pass

    # ------------------------------------------------------------------ service lifecycle
    async def allocate(self, svc: Obj, old: Optional[Obj] = None) -> list[tuple[str, Any]]:
        """Fill spec.clusterIP(s) and node ports; returns what was claimed (for rollback)."""
        spec = svc.setdefault("spec", {})
        claimed: list[tuple[str, Any]] = []
        stype = spec.get("type") or "ClusterIP"
        try:
            old_spec = (old or {}).get("spec") or {}
            if stype != "ExternalName" and spec.get("clusterIP") != "None":
                have = old_spec.get("clusterIP") if old else ""
                if have and have != "None":
                    spec["clusterIP"] = have
                    spec["clusterIPs"] = old_spec.get("clusterIPs") or [have]
                else:
                    ip = await self._allocate_ip(svc, spec.get("clusterIP") or "")
                    claimed.append(("ip", ip))
                    spec["clusterIP"] = ip
                    spec["clusterIPs"] = [ip]
            if stype in ("NodePort", "LoadBalancer"):
                old_ports = {(p.get("port"), p.get("protocol")): p.get("nodePort")
                             for p in old_spec.get("ports") or [] if p.get("nodePort")}
                for i, p in enumerate(spec.get("ports") or []):
                    keep = old_ports.get((p.get("port"), p.get("protocol")))
                    if p.get("nodePort") and p.get("nodePort") == keep:
                        continue
                    if not p.get("nodePort") and keep:
                        p["nodePort"] = keep
                        continue
                    port = await self._allocate_port(svc, p.get("nodePort") or 0, f"spec.ports[{i}].nodePort")
                    claimed.append(("port", port))
                    p["nodePort"] = port
            elif old:
                for p in spec.get("ports") or []:
                    p.pop("nodePort", None)
        except BaseException:
            await self.rollback(claimed)
            raise
        return claimed

    async def rollback(self, claimed: list[tuple[str, Any]]) -> None:
        for what, value in claimed:
            if what == "ip":
                await self.release_ip(value)
            else:
                await self.release_port(value)

    async def release(self, svc: Obj, keep: Optional[Obj] = None) -> None:
        """Free what `svc` holds and `keep` (the updated Service, if any) no longer uses."""
        spec = svc.get("spec") or {}
        kspec = (keep or {}).get("spec") or {}
        for ip in spec.get("clusterIPs") or ([spec["clusterIP"]] if spec.get("clusterIP") else []):
            if ip not in (kspec.get("clusterIPs") or []):
                await self.release_ip(ip)
        kept_ports = {p.get("nodePort") for p in kspec.get("ports") or []}
        for p in spec.get("ports") or []:
            if p.get("nodePort") and p["nodePort"] not in kept_ports:
                await self.release_port(p["nodePort"])


def _invalid(svc: Obj, field: str, value: Any, detail: str) -> errors.APIError:
    shown = f'"{value}"' if isinstance(value, str) else str(value)
    return errors.invalid("Service", "", svc["metadata"].get("name", ""),
                          [Cause("FieldValueInvalid", field, f"Invalid value: {shown}: {detail}")])
