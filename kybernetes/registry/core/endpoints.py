"""Endpoints: the legacy list of addresses backing a service (deprecated in favour of
EndpointSlices since v1.33, which upstream says in a warning)."""

from __future__ import annotations

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
    invalid,
    not_supported,
    required,
)

DEPRECATION_WARNING = "v1 Endpoints is deprecated in v1.33+; use discovery.k8s.io/v1 EndpointSlice"
_MAX_SHOWN = 3


def endpoints_cell(obj: Obj) -> str:
    """upstream formatEndpoints: up to three host:port pairs, then "+ N more..."."""
    subsets = obj.get("subsets") or []
    if not subsets:
        return "<none>"
    shown: list[str] = []
    count = 0
    more = False
    for ss in subsets:
        addresses = ss.get("addresses") or []
        ports = ss.get("ports") or []
        if not ports:  # headless services may have no ports
            count += len(addresses)
            for a in addresses:
                if len(shown) == _MAX_SHOWN:
                    more = True
                    break
                shown.append(a.get("ip", ""))
            continue
        for p in ports:
            count += len(addresses)
            for a in addresses:
                if len(shown) == _MAX_SHOWN:
                    more = True
                    break
                ip = a.get("ip", "")
                host = f"[{ip}]" if ":" in ip else ip
                shown.append(f"{host}:{p.get('port', 0)}")
    out = ",".join(shown)
    return f"{out} + {count - _MAX_SHOWN} more..." if more else out


class EndpointsStrategy(Strategy):
    """core/v1 Endpoints."""

    group = ""
    version = "v1"
    kind = "Endpoints"
    resource = "endpoints"
    singular = "endpoints"
    short_names = ("ep",)
    tracks_generation = False

    columns = (NAME_COLUMN, column("Endpoints", doc=("io.k8s.api.core.v1.Endpoints", "subsets")), AGE_COLUMN)

    def default(self, obj: Obj) -> None:
        for ss in obj.get("subsets") or []:
            for p in ss.get("ports") or []:
                p.setdefault("protocol", "TCP")

    def validate(self, obj: Obj) -> list[Cause]:
        causes: list[Cause] = []
        for i, ss in enumerate(obj.get("subsets") or []):
            for key in ("addresses", "notReadyAddresses"):
                for j, a in enumerate(ss.get(key) or []):
                    if not a.get("ip"):
                        causes.append(required(f"subsets[{i}].{key}[{j}].ip"))
            for j, p in enumerate(ss.get("ports") or []):
                path = f"subsets[{i}].ports[{j}]"
                if p.get("name"):
                    causes += [invalid(f"{path}.name", p["name"], m) for m in _checks.is_dns1123_label(p["name"])]
                causes += [invalid(f"{path}.port", p.get("port"), m) for m in _checks.is_valid_port_num(p.get("port"))]
                proto = p.get("protocol")
                if not proto:
                    causes.append(required(f"{path}.protocol"))
                elif proto not in ("SCTP", "TCP", "UDP"):
                    causes.append(not_supported(f"{path}.protocol", proto, ("SCTP", "TCP", "UDP")))
        return causes

    def warnings_on_create(self, obj: Obj) -> list[str]:
        return [DEPRECATION_WARNING]

    def warnings_on_update(self, new: Obj, old: Obj) -> list[str]:
        return [DEPRECATION_WARNING]

    def row(self, obj: Obj) -> list[Any]:
        return [obj["metadata"]["name"], endpoints_cell(obj), age_of(obj)]
