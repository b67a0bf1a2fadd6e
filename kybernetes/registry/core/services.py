"""Services: stable virtual IPs and names in front of pods.

Defaulting fills the upstream spec defaults (type, session affinity, ports, traffic policies,
IP families) but never allocates a cluster IP or node port: that is the API server's job.
An update that omits already allocated values keeps them, as upstream does.
"""

from __future__ import annotations

from typing import Any

from kybernetes.api.goformat import go_quote
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
    duplicate,
    forbidden,
    format_labels,
    invalid,
    not_supported,
    required,
)

TYPES = ("ClusterIP", "ExternalName", "NodePort", "LoadBalancer")
PROTOCOLS = ("SCTP", "TCP", "UDP")
LB_WIDTH = 16  # upstream clips load-balancer addresses to this width outside -o wide
_D = "io.k8s.api.core.v1.ServiceSpec"


def ip_family(ip: str) -> str:
    return "IPv6" if ":" in ip else "IPv4"


def needs_cluster_ip(svc: Obj) -> bool:
    return dig(svc, "spec", "type", default="ClusterIP") != "ExternalName"


def _lb_addresses(svc: Obj, wide: bool) -> str:
    found = sorted({i.get("ip") or i.get("hostname") for i in dig(svc, "status", "loadBalancer", "ingress",
                                                                   default=[]) or []
                    if i.get("ip") or i.get("hostname")})
    s = ",".join(found)
    if not wide and len(s) > LB_WIDTH:
        s = s[: LB_WIDTH - 3] + "..."
    return s


def external_ip_cell(svc: Obj, wide: bool = True) -> str:
    """upstream getServiceExternalIP (the server prints wide, so nothing is clipped)."""
    spec = svc.get("spec") or {}
    t = spec.get("type") or "ClusterIP"
    external = spec.get("externalIPs") or []
    if t in ("ClusterIP", "NodePort"):
        return ",".join(external) if external else "<none>"
    if t == "LoadBalancer":
        lb = _lb_addresses(svc, wide)
        if external:
            return ",".join((lb.split(",") if lb else []) + external)
        return lb or "<pending>"
    if t == "ExternalName":
        return spec.get("externalName") or ""
    return "<unknown>"


def ports_cell(svc: Obj) -> str:
    pieces = []
    for p in dig(svc, "spec", "ports", default=[]) or []:
        proto = p.get("protocol") or ""
        if p.get("nodePort"):
            pieces.append(f"{p.get('port', 0)}:{p['nodePort']}/{proto}")
        else:
            pieces.append(f"{p.get('port', 0)}/{proto}")
    return ",".join(pieces) or "<none>"


class ServiceStrategy(Strategy):
    """core/v1 Service."""

    group = ""
    version = "v1"
    kind = "Service"
    resource = "services"
    singular = "service"
    short_names = ("svc",)
    categories = ("all",)
    subresources = ("status",)
    future_subresources = ("proxy",)
    # the brief's choice; upstream 1.34 still checked DNS-1035 unless RelaxedServiceNameValidation
    name_format = "dns1123-label"
    has_status_split = True
    tracks_generation = False
    return_deleted_object = True

    columns = (
        NAME_COLUMN,
        column("Type", doc=(_D, "type")),
        column("Cluster-IP", doc=(_D, "clusterIP")),
        column("External-IP", doc=(_D, "externalIPs")),
        column("Port(s)", doc=(_D, "ports")),
        AGE_COLUMN,
        column("Selector", doc=(_D, "selector"), priority=1),
    )
    field_selectors = {
        "spec.clusterIP": lambda o: dig(o, "spec", "clusterIP", default=""),
        "spec.type": lambda o: dig(o, "spec", "type", default=""),
    }

    def default(self, obj: Obj) -> None:
        spec = obj.setdefault("spec", {})
        t = spec.setdefault("type", "ClusterIP")
        spec.setdefault("sessionAffinity", "None")
        if spec["sessionAffinity"] == "ClientIP":
            cfg = spec.setdefault("sessionAffinityConfig", {}).setdefault("clientIP", {})
            cfg.setdefault("timeoutSeconds", 10800)
        for p in spec.get("ports") or []:
            p.setdefault("protocol", "TCP")
            if p.get("targetPort") in (None, 0, ""):
                p["targetPort"] = p.get("port")
        if t in ("NodePort", "LoadBalancer"):
            spec.setdefault("externalTrafficPolicy", "Cluster")
        if t == "LoadBalancer":
            spec.setdefault("allocateLoadBalancerNodePorts", True)
        if t != "ExternalName":
            spec.setdefault("internalTrafficPolicy", "Cluster")
            # clusterIP and clusterIPs[0] name the same address
            if spec.get("clusterIP") and not spec.get("clusterIPs"):
                spec["clusterIPs"] = [spec["clusterIP"]]
            elif spec.get("clusterIPs") and not spec.get("clusterIP"):
                spec["clusterIP"] = spec["clusterIPs"][0]
            headless_no_selector = spec.get("clusterIP") == "None" and not spec.get("selector")
            spec.setdefault("ipFamilyPolicy", "RequireDualStack" if headless_no_selector else "SingleStack")
            if not spec.get("ipFamilies"):
                ips = [ip for ip in spec.get("clusterIPs") or [] if ip and ip != "None"]
                spec["ipFamilies"] = [ip_family(ip) for ip in ips] or ["IPv4"]

    def prepare_for_create(self, obj: Obj) -> None:
        obj["status"] = {"loadBalancer": {}}

    def prepare_for_update(self, new: Obj, old: Obj) -> None:
        super().prepare_for_update(new, old)
        spec, old_spec = new.setdefault("spec", {}), old.get("spec") or {}
        normalize_cluster_ips(spec, old_spec)
        if needs_cluster_ip(new) and needs_cluster_ip(old):
            # an update that omits the allocated address keeps it (upstream patchAllocatedValues)
            if not spec.get("clusterIP") and not spec.get("clusterIPs"):
                for k in ("clusterIP", "clusterIPs"):
                    if k in old_spec:
                        spec[k] = old_spec[k]
            if spec.get("type") in ("NodePort", "LoadBalancer"):
                old_ports = {(p.get("port"), p.get("protocol", "TCP")): p.get("nodePort")
                             for p in old_spec.get("ports") or []}
                for p in spec.get("ports") or []:
                    np = old_ports.get((p.get("port"), p.get("protocol", "TCP")))
                    if np and not p.get("nodePort"):
                        p["nodePort"] = np
                if old_spec.get("healthCheckNodePort") and not spec.get("healthCheckNodePort"):
                    if spec.get("externalTrafficPolicy") == "Local":
                        spec["healthCheckNodePort"] = old_spec["healthCheckNodePort"]

    def validate(self, obj: Obj) -> list[Cause]:
        spec = obj.get("spec") or {}
        causes: list[Cause] = []
        t = spec.get("type") or ""
        if not t:
            causes.append(required("spec.type"))
        elif t not in TYPES:
            causes.append(not_supported("spec.type", t, TYPES))
        headless = spec.get("clusterIP") == "None"
        ports = spec.get("ports") or []
        if t == "ExternalName":
            name = spec.get("externalName") or ""
            if not name:
                causes.append(required("spec.externalName"))
            else:
                causes += [invalid("spec.externalName", name, m)
                           for m in _checks.is_dns1123_subdomain(name.rstrip("."))]
        elif not ports and not headless:
            causes.append(required("spec.ports"))
        names: set[str] = set()
        seen: set[str] = set()
        for i, p in enumerate(ports):
            path = f"spec.ports[{i}]"
            pname = p.get("name") or ""
            if len(ports) > 1 and not pname:
                causes.append(required(f"{path}.name"))
            elif pname:
                causes += [invalid(f"{path}.name", pname, m) for m in _checks.is_dns1123_label(pname)]
                if pname in names:
                    causes.append(duplicate(f"{path}.name", pname))
                names.add(pname)
            causes += [invalid(f"{path}.port", p.get("port"), m) for m in _checks.is_valid_port_num(p.get("port"))]
            proto = p.get("protocol") or ""
            if not proto:
                causes.append(required(f"{path}.protocol"))
            elif proto not in PROTOCOLS:
                causes.append(not_supported(f"{path}.protocol", proto, PROTOCOLS))
            tp = p.get("targetPort")
            if isinstance(tp, int) and not isinstance(tp, bool):
                causes += [invalid(f"{path}.targetPort", tp, m) for m in _checks.is_valid_port_num(tp)]
            elif isinstance(tp, str) and tp:
                causes += [invalid(f"{path}.targetPort", tp, m) for m in _checks.is_valid_port_name(tp)]
            if p.get("nodePort") and t == "ClusterIP":
                causes.append(forbidden(f"{path}.nodePort", "may not be used when `type` is 'ClusterIP'"))
            elif p.get("nodePort"):
                causes += [invalid(f"{path}.nodePort", p["nodePort"], m)
                           for m in _checks.is_valid_port_num(p["nodePort"])]
            key = f"{p.get('port')}/{proto}"
            if key in seen:
                causes.append(duplicate(path, key))
            seen.add(key)
        sa = spec.get("sessionAffinity")
        if sa and sa not in ("ClientIP", "None"):
            causes.append(not_supported("spec.sessionAffinity", sa, ["ClientIP", "None"]))
        for k in ("externalTrafficPolicy", "internalTrafficPolicy"):
            v = spec.get(k)
            if v and v not in ("Cluster", "Local"):
                causes.append(not_supported(f"spec.{k}", v, ["Cluster", "Local"]))
        for k, v in (spec.get("selector") or {}).items():
            causes += [invalid("spec.selector", k, m) for m in _checks.is_qualified_name(k)]
            causes += [invalid("spec.selector", v, m) for m in _checks.is_valid_label_value(v)]
        return causes

    def validate_update(self, new: Obj, old: Obj) -> list[Cause]:
        """upstream ValidateServiceUpdate: allocated addresses and families only grow or shrink at
        the end (dual-stack upgrade/downgrade); the load balancer class is fixed."""
        return (self.validate(new) + _cluster_ips_update(new, old) + _ip_families_update(new, old)
                + _lb_class_update(new, old))

    def row(self, obj: Obj) -> list[Any]:
        ips = dig(obj, "spec", "clusterIPs", default=[]) or []
        return [
            obj["metadata"]["name"],
            dig(obj, "spec", "type", default=""),
            ips[0] if ips else "<none>",
            external_ip_cell(obj),
            ports_cell(obj),
            age_of(obj),
            format_labels(dig(obj, "spec", "selector")),
        ]


def normalize_cluster_ips(spec: Obj, old_spec: Obj) -> None:
    """upstream normalizeClusterIPs on update: guess what a client that set only one of the
    linked clusterIP/clusterIPs fields meant, before validation judges the result."""
    old_ips = old_spec.get("clusterIPs") or []
    if old_ips and not spec.get("clusterIPs") and old_spec.get("clusterIP", "") == spec.get("clusterIP", ""):
        spec["clusterIPs"] = list(old_ips)  # an old client that only knows the singular field
    if old_spec.get("clusterIP", "") != spec.get("clusterIP", ""):
        same = (spec.get("clusterIPs") or []) == old_ips
        if old_spec.get("clusterIP") and not spec.get("clusterIP"):
            if same:
                spec.pop("clusterIPs", None)
        elif same:
            spec["clusterIPs"] = [spec.get("clusterIP", "")]


def _go_strings(values: list[str], type_name: str = "string") -> str:
    return "[]" + type_name + "{" + ", ".join(go_quote(v) for v in values) + "}"


def _is_headless(svc: Obj) -> bool:
    return dig(svc, "spec", "clusterIP") == "None"


def _dual_stack_applies(new: Obj, old: Obj) -> bool:
    return needs_cluster_ip(new) and needs_cluster_ip(old) and not (_is_headless(new) and _is_headless(old))


def _cluster_ips_update(new: Obj, old: Obj) -> list[Cause]:
    if not _dual_stack_applies(new, old):
        return []
    old_ips = dig(old, "spec", "clusterIPs", default=[]) or []
    new_ips = dig(new, "spec", "clusterIPs", default=[]) or []
    value = _go_strings(new_ips)
    path0 = "spec.clusterIPs[0]"
    causes: list[Cause] = []
    if len(old_ips) == len(new_ips):
        for i, ip in enumerate(old_ips):
            if ip != new_ips[i]:
                causes.append(_invalid_raw(f"spec.clusterIPs[{i}]", value, "may not change once set"))
    elif len(old_ips) > len(new_ips):
        if not new_ips:
            causes.append(_invalid_raw(path0, value, "primary clusterIP can not be unset"))
        elif new_ips[0] != old_ips[0]:
            causes.append(_invalid_raw(path0, value, "may not change once set"))
        if len(new_ips) == 1 and dig(new, "spec", "ipFamilyPolicy") != "SingleStack":
            causes.append(_invalid_raw(path0, value,
                                       "`ipFamilyPolicy` must be set to 'SingleStack' when releasing the secondary clusterIP"))
    elif old_ips and new_ips[0] != old_ips[0]:
        causes.append(_invalid_raw(path0, value, "may not change once set"))
    return causes


def _ip_families_update(new: Obj, old: Obj) -> list[Cause]:
    if not _dual_stack_applies(new, old):
        return []
    old_f = dig(old, "spec", "ipFamilies", default=[]) or []
    new_f = dig(new, "spec", "ipFamilies", default=[]) or []
    new_ips = dig(new, "spec", "clusterIPs", default=[]) or []
    families, ips = _go_strings(new_f, "core.IPFamily"), _go_strings(new_ips)
    path0 = "spec.ipFamilies[0]"
    causes: list[Cause] = []
    # upstream reports some of these with the clusterIPs as the value and path; kept as it does
    if len(old_f) == len(new_f):
        for i, f in enumerate(old_f):
            if f != new_f[i]:
                causes.append(_invalid_raw(path0, families, "may not change once set"))
    elif len(old_f) > len(new_f):
        if not new_ips:
            causes.append(_invalid_raw(path0, families, "primary ipFamily can not be unset"))
        if new_f and new_f[0] != old_f[0]:
            causes.append(_invalid_raw(path0, ips, "may not change once set"))
        if len(new_f) == 1 and dig(new, "spec", "ipFamilyPolicy") != "SingleStack":
            causes.append(_invalid_raw("spec.clusterIPs[0]", ips,
                                       "`ipFamilyPolicy` must be set to 'SingleStack' when releasing the secondary ipFamily"))
    elif old_f and new_f and new_f[0] != old_f[0]:
        causes.append(_invalid_raw(path0, ips, "may not change once set"))
    return causes


def _lb_class_update(new: Obj, old: Obj) -> list[Cause]:
    causes: list[Cause] = []
    lb = "LoadBalancer"
    if dig(old, "spec", "type") == lb and dig(new, "spec", "type") == lb:
        ncls, ocls = dig(new, "spec", "loadBalancerClass"), dig(old, "spec", "loadBalancerClass")
        if ncls != ocls:
            causes.append(invalid("spec.loadBalancerClass", ncls, "may not change once set"))
    return causes


def _invalid_raw(path: str, rendered: str, detail: str) -> Cause:
    return Cause("FieldValueInvalid", path, f"Invalid value: {rendered}: {detail}")
