"""Pure helpers of the pod workers: env and `$(VAR)` expansion, resources to CRI
linux resources, and the pod status (phase, conditions) computed from container states."""

from __future__ import annotations

import datetime
from decimal import Decimal
from typing import Any, Mapping, Optional

from kybernetes.kubelet import env_sources
from kybernetes.scheduler.resources import parse_quantity

Obj = dict[str, Any]

CPU_PERIOD = 100_000
MIN_SHARES = 2
MAX_SHARES = 262_144


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def rfc3339_from_ns(ns: int) -> Optional[str]:
    if not ns:
        return None
    return datetime.datetime.fromtimestamp(ns / 1e9, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def go_duration(seconds: float) -> str:
    """Whole seconds as Go's time.Duration prints them: 10s, 1m20s, 5m0s, 1h0m0s."""
    total = int(seconds)
    h, rem = divmod(total, 3600)
    m, sec = divmod(rem, 60)
    if h:
        return f"{h}h{m}m{sec}s"
    if m:
        return f"{m}m{sec}s"
    return f"{sec}s"


def expand(s: str, env: Mapping[str, str]) -> str:
    """Kubernetes `$(VAR)` expansion: defined variables are replaced, `$$` is an escaped `$`,
    references to undefined variables stay as written."""
    out: list[str] = []
    i, n = 0, len(s)
    while i < n:
        c = s[i]
        if c == "$" and i + 1 < n:
            nxt = s[i + 1]
            if nxt == "$":
                out.append("$")
                i += 2
                continue
            if nxt == "(":
                end = s.find(")", i + 2)
                if end != -1:
                    name = s[i + 2:end]
                    if name in env:
                        out.append(env[name])
                    else:
                        out.append(s[i:end + 1])
                    i = end + 1
                    continue
        out.append(c)
        i += 1
    return "".join(out)


def _field_ref(pod: Obj, path: str, pod_ip: str, host_ip: str) -> str:
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    simple = {
        "metadata.name": meta.get("name", ""),
        "metadata.namespace": meta.get("namespace", ""),
        "metadata.uid": meta.get("uid", ""),
        "spec.nodeName": spec.get("nodeName", ""),
        "spec.serviceAccountName": spec.get("serviceAccountName", ""),
        "status.podIP": pod_ip,
        "status.hostIP": host_ip,
        "status.podIPs": pod_ip,
        "status.hostIPs": host_ip,
        "spec.terminationGracePeriodSeconds": str(30 if spec.get("terminationGracePeriodSeconds") is None
                                                  else int(spec["terminationGracePeriodSeconds"])),
    }
    if path in simple:
        return simple[path]
    for prefix, src in (("metadata.labels", meta.get("labels") or {}),
                        ("metadata.annotations", meta.get("annotations") or {})):
        if path.startswith(prefix + "['") and path.endswith("']"):
            return src.get(path[len(prefix) + 2:-2], "")
    return ""


def container_env(pod: Obj, container: Obj, *, pod_ip: str = "", host_ip: str = "",
                  service_env: Optional[Mapping[str, str]] = None,
                  allocatable: Optional[Mapping[str, str]] = None,
                  sources: Optional[env_sources.Sources] = None) -> list[tuple[str, str]]:
    """The container's env as upstream's makeEnvironmentVariables builds it: its envFrom
    (ConfigMaps/Secrets from `sources`, see kubelet.env_sources), then its `env` in order
    (values `$(VAR)`-expanded against earlier entries, then the service variables;
    fieldRef, resourceFieldRef with limits defaulting to the node's allocatable,
    configMapKeyRef/secretKeyRef), then the service variables the container does not set
    itself.  env_sources.EnvSourceError when a required object or key is missing."""
    service_env = service_env or {}
    sources = sources or {}
    ns = (pod.get("metadata") or {}).get("namespace", "")
    env: dict[str, str] = env_sources.env_from(container, sources, ns)
    lookup = _Chain(env, service_env)
    for e in container.get("env") or []:
        name = e.get("name", "")
        vf = e.get("valueFrom") or {}
        if e.get("value"):
            env[name] = expand(str(e["value"]), lookup)
        elif vf.get("fieldRef"):
            env[name] = _field_ref(pod, vf["fieldRef"].get("fieldPath", ""), pod_ip, host_ip)
        elif vf.get("resourceFieldRef"):
            from kybernetes.kubelet.volumes.projection import resource_value  # late: the volumes import this module
            env[name] = resource_value(pod, vf["resourceFieldRef"], dict(allocatable or {}), container.get("name", ""))
        elif vf.get("configMapKeyRef") or vf.get("secretKeyRef"):
            v = env_sources.key_ref(vf, sources, ns)
            if v is not None:  # an optional reference to something missing sets nothing
                env[name] = v
        else:
            env[name] = ""
    return list(env.items()) + [(k, v) for k, v in service_env.items() if k not in env]


class _Chain(Mapping[str, str]):
    """Two mappings looked up in order (the container's env first, then the services')."""

    def __init__(self, first: Mapping[str, str], second: Mapping[str, str]):
        self.first, self.second = first, second

    def __getitem__(self, k: str) -> str:
        return self.first[k] if k in self.first else self.second[k]

    def __contains__(self, k: object) -> bool:
        return k in self.first or k in self.second

    def __iter__(self):
        return iter({**self.second, **self.first})

    def __len__(self) -> int:
        return len({**self.second, **self.first})


def command_and_args(container: Obj, env: Mapping[str, str]) -> tuple[list[str], list[str]]:
    return ([expand(str(c), env) for c in container.get("command") or []],
            [expand(str(a), env) for a in container.get("args") or []])


def linux_resources(container: Obj) -> dict[str, int]:
    """requests/limits -> CRI LinuxContainerResources fields (cpu shares/quota/period, memory)."""
    res = container.get("resources") or {}
    req, lim = res.get("requests") or {}, res.get("limits") or {}
    out: dict[str, int] = {}
    cpu_req = req.get("cpu", lim.get("cpu"))
    if cpu_req is not None:
        milli = int(parse_quantity(cpu_req) * 1000)
        out["cpu_shares"] = max(MIN_SHARES, min(MAX_SHARES, milli * 1024 // 1000))
    else:
        out["cpu_shares"] = MIN_SHARES
    if lim.get("cpu") is not None:
        milli = int(parse_quantity(lim["cpu"]) * 1000)
        out["cpu_period"] = CPU_PERIOD
        out["cpu_quota"] = max(1000, milli * CPU_PERIOD // 1000)
    if lim.get("memory") is not None:
        out["memory_limit_in_bytes"] = int(parse_quantity(lim["memory"]))
    return out


def quantity(v: Any) -> Decimal:
    return parse_quantity(v)


# ------------------------------------------------------------ phase and conditions

def _terminated(cs: Obj) -> Optional[Obj]:
    return (cs.get("state") or {}).get("terminated")


def _running(cs: Obj) -> bool:
    return "running" in (cs.get("state") or {})


def pod_phase(pod: Obj, init_statuses: list[Obj], statuses: list[Obj], *, init_failed: bool) -> str:
    """Upstream's getPhase, for what this kubelet tracks."""
    spec = pod.get("spec") or {}
    policy = spec.get("restartPolicy") or "Always"
    if init_failed:
        return "Failed"
    n = len(spec.get("containers") or [])
    regular_inits = [c for c in spec.get("initContainers") or [] if c.get("restartPolicy") != "Always"]
    inits_done = all((_terminated(s) or {}).get("exitCode") == 0 for s in init_statuses) and \
        len(init_statuses) == len(regular_inits)
    if not inits_done:
        return "Pending"
    running = waiting = stopped = succeeded = 0
    for s in statuses:
        if _running(s):
            running += 1
        elif _terminated(s) is not None:
            stopped += 1
            if _terminated(s).get("exitCode") == 0:
                succeeded += 1
        else:
            waiting += 1
    unknown = n - len(statuses)
    if waiting or unknown:
        # a waiting container that ran before (restarting) keeps the pod Running
        if running == 0 and not any(s.get("lastState", {}).get("terminated") for s in statuses):
            return "Pending"
        return "Running"
    if running:
        return "Running"
    if stopped == n:
        if policy == "Always":
            return "Running"
        if succeeded == n:
            return "Succeeded"
        if policy == "Never":
            return "Failed"
        return "Running"  # OnFailure: restarting the failed ones
    return "Pending"


def status_drifted(ours: Obj, stored: Obj, current: Obj) -> bool:
    """Whether the API's pod status `current` no longer shows the kubelet's last write:
    `ours` is the status the kubelet sent, `stored` the same as the API answered it (so the
    server's defaulting and dropped nulls count as no change).  Only the fields and the
    condition types the kubelet wrote are compared; e.g. the node lifecycle controller's
    Ready=False (NodeNotReady) after a missed heartbeat is drift, a readiness gate or a
    DisruptionTarget condition set by someone else is not."""
    for k, v in ours.items():
        if k == "conditions":
            was = {c.get("type"): c for c in stored.get("conditions") or []}
            now_ = {c.get("type"): c for c in current.get("conditions") or []}
            if any(was.get(c.get("type")) != now_.get(c.get("type")) for c in v or []):
                return True
        elif stored.get(k) != current.get(k):
            return True
    return False


def _cond(ctype: str, ok: bool, reason: str = "", old: Optional[list[Obj]] = None) -> Obj:
    status = "True" if ok else "False"
    prev = next((c for c in old or [] if c.get("type") == ctype), None)
    c: Obj = {"type": ctype, "status": status, "lastProbeTime": None,
              "lastTransitionTime": prev["lastTransitionTime"] if prev and prev.get("status") == status
              and prev.get("lastTransitionTime") else now()}
    if reason and not ok:
        c["reason"] = reason
    return c


def pod_conditions(pod: Obj, phase: str, *, sandbox_ready: bool, init_done: bool,
                   statuses: list[Obj], sidecars: Optional[list[Obj]] = None) -> list[Obj]:
    old = (pod.get("status") or {}).get("conditions") or []
    n = len((pod.get("spec") or {}).get("containers") or [])
    # sidecar (restartable init) containers count towards readiness, as upstream
    all_ready = n > 0 and len(statuses) == n and all(s.get("ready") for s in statuses) and \
        all(s.get("ready") for s in sidecars or [])
    terminal = phase in ("Succeeded", "Failed")
    ready_reason = "PodCompleted" if terminal else "ContainersNotReady"
    conds = [
        _cond("PodReadyToStartContainers", sandbox_ready, "", old),
        _cond("Initialized", init_done or terminal and phase == "Succeeded", "ContainersNotInitialized", old),
        _cond("Ready", all_ready and not terminal, ready_reason, old),
        _cond("ContainersReady", all_ready and not terminal, ready_reason, old),
    ]
    sched = next((c for c in old if c.get("type") == "PodScheduled"), None)
    conds.append(sched or _cond("PodScheduled", True, "", old))
    return conds
