"""EndpointSlices: scalable lists of a service's endpoints."""

from __future__ import annotations

import ipaddress
from typing import Any

from kybernetes.registry import _checks
from kybernetes.registry.base import (
    AGE_COLUMN,
    NAME_COLUMN,
    Cause,
    Obj,
    Strategy,
    age_of,
    column,
    immutable,
    invalid,
    not_supported,
    required,
    too_many,
)

ADDRESS_TYPES = ("IPv4", "IPv6", "FQDN")
MAX_ENDPOINTS = 1000
MAX_ADDRESSES = 100
MAX_PORTS = 100
_MAX_SHOWN = 3
_ES = "io.k8s.api.discovery.v1.EndpointSlice"


def _with_more(shown: list[str], more: bool, count: int) -> str:
    out = ",".join(shown)
    if more:
        return f"{out} + {count - _MAX_SHOWN} more..."
    return out or "<unset>"


def ports_cell(obj: Obj) -> str:
    shown: list[str] = []
    more = False
    ports = obj.get("ports") or []
    for p in ports:
        if len(shown) < _MAX_SHOWN:
            if p.get("port") is not None:
                shown.append(str(p["port"]))
            elif p.get("name") is not None:
                shown.append(p["name"])
            else:
                shown.append("*")
        elif len(shown) == _MAX_SHOWN:
            more = True
    return _with_more(shown, more, len(ports))


def endpoints_cell(obj: Obj) -> str:
    shown: list[str] = []
    more = False
    count = 0
    for e in obj.get("endpoints") or []:
        for a in e.get("addresses") or []:
            if len(shown) < _MAX_SHOWN:
                shown.append(a)
            elif len(shown) == _MAX_SHOWN:
                more = True
            count += 1
    return _with_more(shown, more, count)


def _address_errors(address: str, address_type: str) -> list[str]:
    if address_type == "FQDN":
        return _checks.is_dns1123_subdomain(address)
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return ["must be a valid IP address"]
    if (address_type == "IPv4") != (ip.version == 4):
        return [f"must be an {address_type} address"]
    return []


class EndpointSliceStrategy(Strategy):
    """discovery.k8s.io/v1 EndpointSlice."""

    group = "discovery.k8s.io"
    version = "v1"
    kind = "EndpointSlice"
    resource = "endpointslices"
    singular = "endpointslice"

    columns = (
        NAME_COLUMN,
        column("AddressType", doc=(_ES, "addressType")),
        column("Ports", doc=(_ES, "ports")),
        column("Endpoints", doc=(_ES, "endpoints")),
        AGE_COLUMN,
    )

    def default(self, obj: Obj) -> None:
        for p in obj.get("ports") or []:
            p.setdefault("name", "")
            p.setdefault("protocol", "TCP")

    def validate(self, obj: Obj) -> list[Cause]:
        causes: list[Cause] = []
        at = obj.get("addressType") or ""
        if not at:
            causes.append(required("addressType"))
        elif at not in ADDRESS_TYPES:
            causes.append(not_supported("addressType", at, ADDRESS_TYPES))
        endpoints = obj.get("endpoints") or []
        if len(endpoints) > MAX_ENDPOINTS:
            causes.append(too_many("endpoints", len(endpoints), MAX_ENDPOINTS))
        for i, e in enumerate(endpoints):
            addresses = e.get("addresses") or []
            ap = f"endpoints[{i}].addresses"
            if not addresses:
                causes.append(required(ap, "must contain at least 1 address"))
            elif len(addresses) > MAX_ADDRESSES:
                causes.append(too_many(ap, len(addresses), MAX_ADDRESSES))
            for j, a in enumerate(addresses):
                if at in ADDRESS_TYPES:
                    causes += [invalid(f"{ap}[{j}]", a, m) for m in _address_errors(a, at)]
        ports = obj.get("ports") or []
        if len(ports) > MAX_PORTS:
            causes.append(too_many("ports", len(ports), MAX_PORTS))
        for i, p in enumerate(ports):
            pp = f"ports[{i}]"
            if p.get("name"):
                causes += [invalid(f"{pp}.name", p["name"], m) for m in _checks.is_dns1123_label(p["name"])]
            if p.get("port") is not None:
                causes += [invalid(f"{pp}.port", p["port"], m) for m in _checks.is_valid_port_num(p["port"])]
            proto = p.get("protocol")
            if proto is not None and proto not in ("SCTP", "TCP", "UDP"):
                causes.append(not_supported(f"{pp}.protocol", proto, ("SCTP", "TCP", "UDP")))
        return causes

    def validate_update(self, new: Obj, old: Obj) -> list[Cause]:
        causes = self.validate(new)
        if new.get("addressType") != old.get("addressType"):
            causes.append(immutable("addressType", new.get("addressType") or ""))
        return causes

    def generation_changes(self, new: Obj, old: Obj) -> bool:
        return any(new.get(k) != old.get(k) for k in ("addressType", "endpoints", "ports"))

    def row(self, obj: Obj) -> list[Any]:
        return [obj["metadata"]["name"], obj.get("addressType") or "", ports_cell(obj), endpoints_cell(obj),
                age_of(obj)]
