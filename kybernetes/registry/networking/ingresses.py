"""Ingresses: HTTP routing into services."""

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
    dig,
    invalid,
    not_supported,
    required,
)

PATH_TYPES = ("Exact", "ImplementationSpecific", "Prefix")
LB_WIDTH = 16
_MAX_HOSTS = 3


def hosts_cell(obj: Obj) -> str:
    """upstream formatHosts: up to three hosts, "*" when none is named."""
    rules = dig(obj, "spec", "rules", default=[]) or []
    shown: list[str] = []
    more = False
    for rule in rules:
        if len(shown) == _MAX_HOSTS:
            more = True
        if not more and rule.get("host"):
            shown.append(rule["host"])
    if not shown:
        return "*"
    out = ",".join(shown)
    return f"{out} + {len(rules) - _MAX_HOSTS} more..." if more else out


def address_cell(obj: Obj, wide: bool = True) -> str:
    found = sorted({i.get("ip") or i.get("hostname") for i in dig(obj, "status", "loadBalancer", "ingress",
                                                                   default=[]) or []
                    if i.get("ip") or i.get("hostname")})
    s = ",".join(found)
    if not wide and len(s) > LB_WIDTH:
        s = s[: LB_WIDTH - 3] + "..."
    return s


def _validate_backend(backend: Obj, path: str) -> list[Cause]:
    causes: list[Cause] = []
    svc, res = backend.get("service"), backend.get("resource")
    if svc is not None and res is not None:
        causes.append(invalid(path, "", "cannot set both resource and service backends"))
    elif svc is not None:
        if not svc.get("name"):
            causes.append(required(f"{path}.service.name"))
        else:
            causes += [invalid(f"{path}.service.name", svc["name"], m) for m in _checks.is_dns1035_label(svc["name"])]
        port = svc.get("port") or {}
        if port.get("name") and port.get("number"):
            causes.append(invalid(f"{path}.service.port", port, "cannot set both port name & port number"))
        elif port.get("name"):
            causes += [invalid(f"{path}.service.port.name", port["name"], m)
                       for m in _checks.is_valid_port_name(port["name"])]
        elif port.get("number") is not None:
            causes += [invalid(f"{path}.service.port.number", port["number"], m)
                       for m in _checks.is_valid_port_num(port["number"])]
        else:
            causes.append(required(f"{path}.service.port", "port name or number is required"))
    elif res is None:
        causes.append(invalid(path, "", "resource or service backend is required"))
    return causes


class IngressStrategy(Strategy):
    """networking.k8s.io/v1 Ingress."""

    group = "networking.k8s.io"
    version = "v1"
    kind = "Ingress"
    resource = "ingresses"
    singular = "ingress"
    short_names = ("ing",)
    subresources = ("status",)
    has_status_split = True

    columns = (
        NAME_COLUMN,
        column("Class", doc="The name of the IngressClass resource that should be used for additional configuration"),
        column("Hosts", doc="Hosts that incoming requests are matched against before the ingress rule"),
        column("Address", doc="Address is a list containing ingress points for the load-balancer"),
        column("Ports", doc="Ports of TLS configurations that open"),
        AGE_COLUMN,
    )

    def prepare_for_create(self, obj: Obj) -> None:
        obj["status"] = {"loadBalancer": {}}

    def validate(self, obj: Obj) -> list[Cause]:
        spec = obj.get("spec") or {}
        causes: list[Cause] = []
        rules = spec.get("rules") or []
        if spec.get("defaultBackend") is None and not rules:
            causes.append(invalid("spec.rules", rules, "either `defaultBackend` or `rules` must be specified"))
        if spec.get("defaultBackend") is not None:
            causes += _validate_backend(spec["defaultBackend"], "spec.defaultBackend")
        for i, rule in enumerate(rules):
            rp = f"spec.rules[{i}]"
            host = rule.get("host")
            if host:
                check = host[2:] if host.startswith("*.") else host
                causes += [invalid(f"{rp}.host", host, m) for m in _checks.is_dns1123_subdomain(check)]
            for j, p in enumerate(dig(rule, "http", "paths", default=[]) or []):
                pp = f"{rp}.http.paths[{j}]"
                pt = p.get("pathType")
                if not pt:
                    causes.append(required(f"{pp}.pathType", "pathType must be specified"))
                elif pt not in PATH_TYPES:
                    causes.append(not_supported(f"{pp}.pathType", pt, PATH_TYPES))
                elif pt in ("Exact", "Prefix") and not (p.get("path") or "").startswith("/"):
                    causes.append(invalid(f"{pp}.path", p.get("path") or "", "must be an absolute path"))
                causes += _validate_backend(p.get("backend") or {}, f"{pp}.backend")
        return causes

    def row(self, obj: Obj) -> list[Any]:
        spec = obj.get("spec") or {}
        cls = spec.get("ingressClassName")
        return [
            obj["metadata"]["name"],
            cls if cls is not None else "<none>",
            hosts_cell(obj),
            address_cell(obj),
            "80, 443" if spec.get("tls") else "80",
            age_of(obj),
        ]
