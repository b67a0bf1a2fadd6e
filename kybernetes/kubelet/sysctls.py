"""Pod sysctls on the node (upstream pkg/kubelet/sysctl): the kubelet admits a pod only
if every sysctl of its securityContext is in the safe set or matches a pattern of
--allowed-unsafe-sysctls (and is not of a host namespace the pod shares); the admitted
ones go to the CRI sandbox config's linux.sysctls."""

from __future__ import annotations

from typing import Any, Iterable, Optional

from kybernetes.registry.core.podspec import sysctl_namespace

Obj = dict[str, Any]

REASON = "SysctlForbidden"

# namespaced sysctls that isolate the pod from the node and its other pods
SAFE_SYSCTLS = (
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
    "net.ipv4.tcp_rmem",
    "net.ipv4.tcp_wmem",
)


def normalize(name: str) -> str:
    """A sysctl name with `/` separators (e.g. net/ipv4/conf/eth0.100/...) in the dotted form."""
    slash, dot = name.find("/"), name.find(".")
    if slash != -1 and (dot == -1 or slash < dot):
        return name.translate(str.maketrans("/.", "./"))
    return name


class Allowlist:
    """The sysctls this kubelet admits: exact names and `prefix*` patterns."""

    def __init__(self, patterns: Iterable[str] = ()):
        self.names: dict[str, str] = {}
        self.prefixes: dict[str, str] = {}
        for p in list(SAFE_SYSCTLS) + [p.strip() for p in patterns if p.strip()]:
            p = normalize(p)
            ns = sysctl_namespace(p.rstrip("*") if p.endswith("*") else p)
            if not ns:
                raise ValueError(f'the sysctls "{p}" are not known to be namespaced')
            if p.endswith("*"):
                self.prefixes[p[:-1]] = ns
            else:
                self.names[p] = ns

    def _validate(self, name: str, host_net: bool, host_ipc: bool) -> Optional[str]:
        name = normalize(name)
        ns = self.names.get(name)
        if ns is None:
            ns = next((v for p, v in self.prefixes.items() if name.startswith(p)), None)
        if ns is None:
            return f'"{name}" not allowlisted'
        if (ns == "ipc" and host_ipc) or (ns == "net" and host_net):
            return f'"{name}" not allowed with host {ns} enabled'
        return None

    def admit(self, pod: Obj) -> Optional[tuple[str, str]]:
        """None to admit the pod, else (SysctlForbidden, message) as upstream's admit handler."""
        spec = pod.get("spec") or {}
        for s in (spec.get("securityContext") or {}).get("sysctls") or []:
            err = self._validate(str(s.get("name", "")), bool(spec.get("hostNetwork")), bool(spec.get("hostIPC")))
            if err:
                return REASON, f"forbidden sysctl: {err}"
        return None


def sandbox_sysctls(pod: Obj) -> dict[str, str]:
    """The pod's sysctls as the CRI sandbox config's linux.sysctls."""
    sc = (pod.get("spec") or {}).get("securityContext") or {}
    return {str(s.get("name", "")): str(s.get("value", "")) for s in sc.get("sysctls") or [] if s.get("name")}
