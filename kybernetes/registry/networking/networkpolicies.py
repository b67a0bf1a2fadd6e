"""NetworkPolicies: which traffic may reach and leave pods."""

from __future__ import annotations

from typing import Any

from kybernetes.registry import _checks, _workloads
from kybernetes.registry.base import (
    AGE_COLUMN,
    NAME_COLUMN,
    Cause,
    Obj,
    Strategy,
    age_of,
    column,
    dig,
    forbidden,
    format_label_selector,
    invalid,
    not_supported,
    required,
)
from kybernetes.registry.networking.servicecidrs import cidr_error

POLICY_TYPES = ("Ingress", "Egress")
PROTOCOLS = ("SCTP", "TCP", "UDP")


def _rules(spec: Obj) -> list[tuple[str, str, Obj]]:
    """(direction, peers key, rule) for every ingress and egress rule."""
    return ([("ingress", "from", r) for r in spec.get("ingress") or []]
            + [("egress", "to", r) for r in spec.get("egress") or []])


class NetworkPolicyStrategy(Strategy):
    """networking.k8s.io/v1 NetworkPolicy."""

    group = "networking.k8s.io"
    version = "v1"
    kind = "NetworkPolicy"
    resource = "networkpolicies"
    singular = "networkpolicy"
    short_names = ("netpol",)

    columns = (NAME_COLUMN, column("Pod-Selector", doc=("io.k8s.api.networking.v1.NetworkPolicySpec", "podSelector")),
               AGE_COLUMN)

    def default(self, obj: Obj) -> None:
        spec = obj.setdefault("spec", {})
        for _, _, rule in _rules(spec):
            for p in rule.get("ports") or []:
                p.setdefault("protocol", "TCP")
        if not spec.get("policyTypes"):
            # no policyTypes means Ingress, plus Egress when egress rules are given
            spec["policyTypes"] = ["Ingress"] + (["Egress"] if spec.get("egress") else [])

    def validate(self, obj: Obj) -> list[Cause]:
        spec = obj.get("spec") or {}
        causes = _workloads.validate_label_selector(spec.get("podSelector") or {}, "spec.podSelector")
        counters = {"ingress": 0, "egress": 0}
        for direction, peers_key, rule in _rules(spec):
            i = counters[direction]
            counters[direction] += 1
            rp = f"spec.{direction}[{i}]"
            for j, p in enumerate(rule.get("ports") or []):
                pp = f"{rp}.ports[{j}]"
                proto = p.get("protocol")
                if proto and proto not in PROTOCOLS:
                    causes.append(not_supported(f"{pp}.protocol", proto, PROTOCOLS))
                port = p.get("port")
                if isinstance(port, int) and not isinstance(port, bool):
                    causes += [invalid(f"{pp}.port", port, m) for m in _checks.is_valid_port_num(port)]
                    end = p.get("endPort")
                    if end is not None and end < port:
                        causes.append(invalid(f"{pp}.endPort", end, "must be greater than or equal to `port`"))
                elif isinstance(port, str):
                    causes += [invalid(f"{pp}.port", port, m) for m in _checks.is_valid_port_name(port)]
                    if p.get("endPort") is not None:
                        causes.append(invalid(f"{pp}.endPort", p["endPort"],
                                              "may not be specified when `port` is non-numeric"))
                elif p.get("endPort") is not None:
                    causes.append(required(f"{pp}.port", "may not be specified when `endPort` is specified"))
            for j, peer in enumerate(rule.get(peers_key) or []):
                peer_path = f"{rp}.{peers_key}[{j}]"
                ipb = peer.get("ipBlock")
                if ipb is not None:
                    if peer.get("podSelector") is not None or peer.get("namespaceSelector") is not None:
                        causes.append(forbidden(peer_path, "may not specify both ipBlock and another peer"))
                    err = cidr_error(ipb.get("cidr") or "")
                    if err:
                        causes.append(invalid(f"{peer_path}.ipBlock.cidr", ipb.get("cidr") or "", err))
                elif peer.get("podSelector") is None and peer.get("namespaceSelector") is None:
                    causes.append(required(peer_path, "must specify a peer"))
                for key in ("podSelector", "namespaceSelector"):
                    if peer.get(key) is not None:
                        causes += _workloads.validate_label_selector(peer[key], f"{peer_path}.{key}")
        types = spec.get("policyTypes") or []
        for i, t in enumerate(types):
            if t not in POLICY_TYPES:
                causes.append(not_supported(f"spec.policyTypes[{i}]", t, POLICY_TYPES))
        if len(types) > 2:
            causes.append(invalid("spec.policyTypes", types, "may not specify more than two policyTypes"))
        return causes

    def row(self, obj: Obj) -> list[Any]:
        return [obj["metadata"]["name"], format_label_selector(dig(obj, "spec", "podSelector") or {}), age_of(obj)]
