"""IPAddresses: one allocated service IP each (name is the address)."""

from __future__ import annotations

from kybernetes.registry.base import Strategy


class IPAddressStrategy(Strategy):
    """networking.k8s.io/v1 IPAddress."""

    group = "networking.k8s.io"
    version = "v1"
    kind = "IPAddress"
    resource = "ipaddresses"
    singular = "ipaddress"
    namespaced = False
    short_names = ("ip",)
    name_format = "ip-address"
