"""Service environment variables of a container (upstream pkg/kubelet/envvars and
kubelet_pods.go getServiceEnvVarMap): for every Service with a cluster IP in the pod's
namespace (when `spec.enableServiceLinks` is true) plus, always, the `kubernetes` master
Service of the `default` namespace:

    FOO_SERVICE_HOST, FOO_SERVICE_PORT, FOO_SERVICE_PORT_<PORTNAME>
    FOO_PORT=tcp://IP:PORT (first port) and per port FOO_PORT_<PORT>_<PROTO>[_PROTO|_PORT|_ADDR]
"""

from __future__ import annotations

from typing import Any, Iterable, Optional

Obj = dict[str, Any]

# services whose variables every pod gets (the apiserver's own service)
MASTER_SERVICES = frozenset({"kubernetes"})
MASTER_NAMESPACE = "default"
NOT_SYNCED = "services have not yet been read at least once, cannot construct envvars"


class ServicesNotSynced(Exception):
    """The kubelet's Service informer has not listed once: envs cannot be built yet."""

    def __init__(self) -> None:
        super().__init__(NOT_SYNCED)


def is_service_ip_set(svc: Obj) -> bool:
    ip = (svc.get("spec") or {}).get("clusterIP") or ""
    return ip not in ("", "None")


def env_name(name: str) -> str:
    """A Service or port name as an environment variable name part: upper case, `-` to `_`."""
    return name.replace("-", "_").upper()


def _join_host_port(ip: str, port: int) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def _link_vars(svc: Obj) -> list[tuple[str, str]]:
    """The Docker-link style variables of a service (one set per port, the first port also bare)."""
    spec = svc.get("spec") or {}
    ip = spec.get("clusterIP", "")
    prefix = env_name(svc["metadata"]["name"])
    out: list[tuple[str, str]] = []
    for i, sp in enumerate(spec.get("ports") or []):
        proto = sp.get("protocol") or "TCP"
        port = int(sp.get("port") or 0)
        url = f"{proto.lower()}://{_join_host_port(ip, port)}"
        if i == 0:
            out.append((f"{prefix}_PORT", url))
        pp = f"{prefix}_PORT_{port}_{proto.upper()}"
        out += [(pp, url), (pp + "_PROTO", proto.lower()), (pp + "_PORT", str(port)), (pp + "_ADDR", ip)]
    return out


def from_services(services: Iterable[Obj]) -> list[tuple[str, str]]:
    """The environment variables of the given services (those without a cluster IP skipped)."""
    out: list[tuple[str, str]] = []
    for svc in services:
        if not is_service_ip_set(svc):
            continue
        spec = svc.get("spec") or {}
        ports = spec.get("ports") or []
        base = env_name(svc["metadata"]["name"])
        out.append((base + "_SERVICE_HOST", spec["clusterIP"]))
        if ports:
            out.append((base + "_SERVICE_PORT", str(int(ports[0].get("port") or 0))))
        for sp in ports:
            if sp.get("name"):
                out.append((f"{base}_SERVICE_PORT_{env_name(sp['name'])}", str(int(sp.get("port") or 0))))
        out += _link_vars(svc)
    return out


def service_env_map(services: Iterable[Obj], namespace: str, enable_service_links: bool) -> dict[str, str]:
    """The service variables a pod in `namespace` sees: its namespace's services when
    `enable_service_links`, and always the master services of the default namespace (a
    same-named service of the pod's own namespace wins)."""
    chosen: dict[str, Obj] = {}
    for svc in services:
        if not is_service_ip_set(svc):
            continue
        meta = svc.get("metadata") or {}
        name, ns = meta.get("name", ""), meta.get("namespace", "")
        if ns == MASTER_NAMESPACE and name in MASTER_SERVICES:
            chosen.setdefault(name, svc)
        elif ns == namespace and enable_service_links:
            chosen[name] = svc
    return dict(from_services(chosen[k] for k in sorted(chosen)))


class ServiceEnv:
    """The kubelet's view of the Services (an Informer over all namespaces, or None when
    the kubelet runs without an API server) and the env map of a pod from it."""

    def __init__(self, informer: Optional[Any]):
        self.informer = informer

    def for_pod(self, pod: Obj, *, static: bool = False) -> dict[str, str]:
        """The pod's service variables; ServicesNotSynced until the informer has listed
        once (static pods do not wait, as upstream)."""
        if self.informer is None:
            return {}
        if not static and not self.informer.has_synced:
            raise ServicesNotSynced()
        spec = pod.get("spec") or {}
        links = spec.get("enableServiceLinks")
        ns = (pod.get("metadata") or {}).get("namespace", "")
        services = self.informer.by_namespace(MASTER_NAMESPACE)
        if ns != MASTER_NAMESPACE:
            services = services + self.informer.by_namespace(ns)
        return service_env_map(services, ns, True if links is None else bool(links))
