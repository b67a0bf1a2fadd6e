"""A pod's DNS and host names, as upstream's kubelet computes them: the sandbox hostname,
the CRI DNS config from dnsPolicy (ClusterFirst, ClusterFirstWithHostNet, Default, None)
merged with spec.dnsConfig, and the Kubernetes-managed /etc/hosts file."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Obj = dict[str, Any]
MAX_NAMESERVERS = 3
MAX_SEARCHES = 32
MAX_SEARCH_CHARS = 2048
HOSTNAME_MAX = 63
HOSTS_HEADER = """# Kubernetes-managed hosts file.
127.0.0.1\tlocalhost
::1\tlocalhost ip6-localhost ip6-loopback
fe00::0\tip6-localnet
fe00::0\tip6-mcastprefix
fe00::1\tip6-allnodes
fe00::2\tip6-allrouters
"""


@dataclass
class DNS:
    servers: list[str] = field(default_factory=list)
    searches: list[str] = field(default_factory=list)
    options: list[str] = field(default_factory=list)


def parse_resolv_conf(text: str) -> DNS:
    """nameserver, search and options lines of a resolv.conf (comments with # or ;)."""
    d = DNS()
    for line in text.splitlines():
        line = line.split("#", 1)[0].split(";", 1)[0].strip()
        if not line:
            continue
        key, *vals = line.split()
        if key == "nameserver" and vals:
            d.servers.append(vals[0])
        elif key == "search":
            d.searches = list(vals)  # the last search line wins, as in the resolver
        elif key == "options":
            d.options.extend(vals)
    return d


def hostname_and_domain(pod: Obj, cluster_domain: str) -> tuple[str, str]:
    """(hostname, domain): spec.hostname or the pod name (at most 63 characters, no trailing
    '-' or '.'), and <subdomain>.<namespace>.svc.<cluster domain> when a subdomain is set."""
    meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
    name = spec.get("hostname") or meta.get("name", "")
    if len(name) > HOSTNAME_MAX:
        name = name[:HOSTNAME_MAX].rstrip("-.")
    sub = spec.get("subdomain") or ""
    domain = f"{sub}.{meta.get('namespace', '')}.svc.{cluster_domain}" if sub else ""
    return name, domain


def sandbox_hostname(pod: Obj, cluster_domain: str) -> str:
    name, domain = hostname_and_domain(pod, cluster_domain)
    if (pod.get("spec") or {}).get("setHostnameAsFQDN") and domain:
        return f"{name}.{domain}"
    return name


def _dedup(xs: list[str]) -> list[str]:
    seen: set[str] = set()
    return [x for x in xs if not (x in seen or seen.add(x))]


def _merge_options(base: list[str], extra: list[Obj]) -> list[str]:
    opts: dict[str, str] = {}
    for o in base:
        opts[o.partition(":")[0]] = o
    for o in extra:
        k = o.get("name", "")
        opts[k] = f"{k}:{o['value']}" if o.get("value") is not None else k
    return list(opts.values())


def dns_policy_kind(pod: Obj, cluster_dns: list[str]) -> str:
    spec = pod.get("spec") or {}
    policy = spec.get("dnsPolicy") or "ClusterFirst"
    host_net = bool(spec.get("hostNetwork"))
    if policy == "None":
        return "none"
    if policy == "Default":
        return "host"
    if policy == "ClusterFirst" and host_net:
        return "host"
    # ClusterFirst, ClusterFirstWithHostNet; without a cluster DNS upstream falls back to the host's
    return "cluster" if cluster_dns else "host"


def pod_dns(pod: Obj, *, cluster_dns: list[str], cluster_domain: str, host: DNS) -> DNS:
    """The resolver configuration of the pod's sandbox."""
    kind = dns_policy_kind(pod, cluster_dns)
    ns = pod["metadata"]["namespace"]
    if kind == "none":
        d = DNS()
    elif kind == "host":
        d = DNS(list(host.servers), list(host.searches), list(host.options))
    else:
        searches = [f"{ns}.svc.{cluster_domain}", f"svc.{cluster_domain}", cluster_domain] if cluster_domain else []
        d = DNS(list(cluster_dns), _dedup(searches + host.searches), ["ndots:5"])
    extra = (pod.get("spec") or {}).get("dnsConfig") or {}
    if extra:
        d.servers = _dedup(d.servers + list(extra.get("nameservers") or []))
        d.searches = _dedup(d.searches + list(extra.get("searches") or []))
        d.options = _merge_options(d.options, list(extra.get("options") or []))
    d.servers = d.servers[:MAX_NAMESERVERS]
    d.searches = d.searches[:MAX_SEARCHES]
    while d.searches and len(" ".join(d.searches)) > MAX_SEARCH_CHARS:
        d.searches.pop()
    return d


def _host_aliases(pod: Obj) -> str:
    aliases = (pod.get("spec") or {}).get("hostAliases") or []
    if not aliases:
        return ""
    return "\n# Entries added by HostAliases.\n" + "".join(
        f"{a.get('ip', '')}\t{chr(9).join(a.get('hostnames') or [])}\n" for a in aliases)


def hosts_file(pod: Obj, pod_ips: list[str], cluster_domain: str) -> str:
    """The Kubernetes-managed /etc/hosts of a pod on the pod network."""
    name, domain = hostname_and_domain(pod, cluster_domain)
    out = [HOSTS_HEADER]
    for ip in pod_ips:
        out.append(f"{ip}\t{name}.{domain}\t{name}\n" if domain else f"{ip}\t{name}\n")
    return "".join(out) + _host_aliases(pod)


HOST_NETWORK_HOSTS_HEADER = "# Kubernetes-managed hosts file (host network).\n"


def host_network_hosts_file(pod: Obj, node_hosts: str) -> str:
    """The /etc/hosts of a host-network pod: the node's own, then the pod's hostAliases."""
    return HOST_NETWORK_HOSTS_HEADER + node_hosts + _host_aliases(pod)
