"""ServiceCIDRs: the ranges service IPs are allocated from."""

from __future__ import annotations

import ipaddress
from typing import Any, Optional

from kybernetes.registry.base import (
    AGE_COLUMN,
    NAME_COLUMN,
    Cause,
    Obj,
    Strategy,
    age_of,
    column,
    dig,
    immutable,
    invalid,
    required,
    too_many,
)


def cidr_error(cidr: str) -> Optional[str]:
    """None for a canonical CIDR; otherwise what is wrong with it."""
    try:
        net = ipaddress.ip_network(cidr, strict=False)
    except ValueError:
        return "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"
    if str(net) != cidr:
        return f"must be in canonical form (\"{net}\")"
    return None


class ServiceCIDRStrategy(Strategy):
    """networking.k8s.io/v1 ServiceCIDR."""

    group = "networking.k8s.io"
    version = "v1"
    kind = "ServiceCIDR"
    resource = "servicecidrs"
    singular = "servicecidr"
    namespaced = False
    subresources = ("status",)
    has_status_split = True
    tracks_generation = False

    columns = (NAME_COLUMN, column("CIDRs", doc=("io.k8s.api.networking.v1.ServiceCIDRSpec", "cidrs")), AGE_COLUMN)

    def validate(self, obj: Obj) -> list[Cause]:
        cidrs = dig(obj, "spec", "cidrs", default=[]) or []
        if not cidrs:
            return [required("spec.cidrs", "at least one CIDR required")]
        causes: list[Cause] = []
        if len(cidrs) > 2:
            causes.append(too_many("spec.cidrs", len(cidrs), 2))
        for i, c in enumerate(cidrs):
            err = cidr_error(c)
            if err:
                causes.append(invalid(f"spec.cidrs[{i}]", c, err))
        if len(cidrs) == 2 and not any(cidr_error(c) for c in cidrs):
            if ipaddress.ip_network(cidrs[0]).version == ipaddress.ip_network(cidrs[1]).version:
                causes.append(invalid("spec.cidrs", cidrs, "may specify no more than one IP for each IP family, "
                                                           "i.e 192.168.0.0/24 and 2001:db8::/64"))
        return causes

    def validate_update(self, new: Obj, old: Obj) -> list[Cause]:
        causes = self.validate(new)
        nc = dig(new, "spec", "cidrs", default=[]) or []
        oc = dig(old, "spec", "cidrs", default=[]) or []
        # a single-family range may gain its other family; nothing else changes
        if nc != oc and not (len(oc) == 1 and len(nc) == 2 and nc[0] == oc[0]):
            causes.append(immutable("spec.cidrs", nc))
        return causes

    def row(self, obj: Obj) -> list[Any]:
        return [obj["metadata"]["name"], ",".join(dig(obj, "spec", "cidrs", default=[]) or []), age_of(obj)]
