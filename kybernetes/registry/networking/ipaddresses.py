"""IPAddresses: one allocated service IP each; the name is the address itself.

Upstream's printer returns an AGE cell it declares no column for; we return the two
declared cells only, so the table stays consistent.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from kybernetes.registry.base import (
    NAME_COLUMN,
    Cause,
    Obj,
    Strategy,
    column,
    dig,
    go_quote,
    immutable,
    invalid,
    required,
)


def ip_name_errors(name: str) -> list[str]:
    """The name must be an IP address in canonical form."""
    try:
        ip = ipaddress.ip_address(name)
    except ValueError:
        return [f"ParseAddr({go_quote(name)}): unable to parse IP"]
    if str(ip) != name:
        return ["must be a canonical format IP address"]
    return []


def parent_ref_cell(obj: Obj) -> str:
    ref = dig(obj, "spec", "parentRef")
    if not ref:
        return "<none>"
    gr = ref.get("resource", "") + (f".{ref['group']}" if ref.get("group") else "")
    out = gr.lower()
    if ref.get("namespace"):
        out += "/" + ref["namespace"]
    return out + "/" + ref.get("name", "")


class IPAddressStrategy(Strategy):
    """networking.k8s.io/v1 IPAddress."""

    group = "networking.k8s.io"
    version = "v1"
    kind = "IPAddress"
    resource = "ipaddresses"
    singular = "ipaddress"
    namespaced = False
    short_names = ("ip",)
    # the generic check only keeps the name a safe path segment; validate() wants an IP address
    name_format = "path-segment"
    tracks_generation = False

    columns = (NAME_COLUMN, column("ParentRef", doc=("io.k8s.api.networking.v1.IPAddressSpec", "parentRef")))

    def validate(self, obj: Obj) -> list[Cause]:
        # upstream's name rule for this kind: an IP address, written canonically
        name = dig(obj, "metadata", "name", default="")
        causes = [invalid("metadata.name", name, m) for m in ip_name_errors(name)]
        ref = dig(obj, "spec", "parentRef")
        if ref is None:
            causes.append(required("spec.parentRef"))
        else:
            for k in ("resource", "name"):
                if not ref.get(k):
                    causes.append(required(f"spec.parentRef.{k}"))
        return causes

    def validate_update(self, new: Obj, old: Obj) -> list[Cause]:
        causes = self.validate(new)
        if dig(new, "spec", "parentRef") != dig(old, "spec", "parentRef"):
            causes.append(immutable("spec.parentRef", dig(new, "spec", "parentRef")))
        return causes

    def row(self, obj: Obj) -> list[Any]:
        return [obj["metadata"]["name"], parent_ref_cell(obj)]
