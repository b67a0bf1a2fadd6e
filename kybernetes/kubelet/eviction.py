"""Node-pressure eviction, as upstream's eviction manager: every monitoring period the
kubelet reads the Summary API and
- evicts a pod breaking a local ephemeral storage limit (emptyDir sizeLimit, the pod's or
  a container's ephemeral-storage limit; kubelet.eviction_localstorage);
- compares the signals (memory.available, nodefs.available, nodefs.inodesFree,
  imagefs.available, imagefs.inodesFree, pid.available) with the hard and soft thresholds
  (kubelet.eviction_thresholds).  A soft threshold counts once met continuously for its
  grace period; a threshold that drove an eviction stays met until the signal recovers
  past it by its minimum reclaim;
- reports MemoryPressure/DiskPressure/PIDPressure on the node while a threshold is met
  (grace period or not) and for `--eviction-pressure-transition-period` after;
- while a threshold is met, evicts one pod per period: the pods using more than they
  requested first, then lower priority, then by usage above the request (for PIDs:
  priority, then process count).  Hard thresholds kill at once (1 s grace, as upstream),
  soft ones with the pod's grace period capped by `--eviction-max-pod-grace-period`.

    mgr = EvictionManager(stats.summary, parse_threshold_config(DEFAULT_EVICTION_HARD),
                          active_pods=list_pods, evict=evict_pod)
    await mgr.synchronize()      # one pass; mgr.start() runs it every `period` seconds
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Optional

from kybernetes.kubelet.background import BackgroundLoop
from kybernetes.kubelet.eviction_localstorage import local_storage_violation
from kybernetes.kubelet.eviction_thresholds import (
    DEFAULT_EVICTION_HARD, DISK_PRESSURE, IMAGEFS_AVAILABLE, IMAGEFS_INODES_FREE, MEMORY_AVAILABLE,
    MEMORY_PRESSURE, NODEFS_AVAILABLE, NODEFS_INODES_FREE, PID_AVAILABLE, PID_PRESSURE, SIGNAL_CONDITION,
    SIGNAL_RESOURCE, Threshold, Value, binary_si, parse_threshold_config, parse_thresholds)
from kybernetes.kubelet.qos_cgroups import qos_class
from kybernetes.scheduler.resources import parse_quantity

# the threshold vocabulary is re-exported: callers configure the manager through this module
__all__ = ["DEFAULT_EVICTION_HARD", "EvictionManager", "Threshold", "Value", "parse_threshold_config",
           "parse_thresholds"]

log = logging.getLogger("kybernetes.kubelet.eviction")

Obj = dict[str, Any]

# the signals observed here, in the order upstream reclaims them (memory first)
SIGNALS = (MEMORY_AVAILABLE, NODEFS_AVAILABLE, NODEFS_INODES_FREE, IMAGEFS_AVAILABLE, IMAGEFS_INODES_FREE,
           PID_AVAILABLE)

DEFAULT_MONITORING_PERIOD = 10.0
DEFAULT_PRESSURE_TRANSITION_PERIOD = 300.0
# upstream's immediateEvictionGracePeriodSeconds: hard thresholds and local storage limits
IMMEDIATE_GRACE_SECONDS = 1
DEFAULT_TERMINATION_GRACE_SECONDS = 30
POD_CLEANUP_TIMEOUT, POD_CLEANUP_POLL = 30.0, 1.0

MEMORY_PRESSURE_TAINT = "node.kubernetes.io/memory-pressure"
_CONDITION = SIGNAL_CONDITION
_RESOURCE = SIGNAL_RESOURCE
_INODES = (NODEFS_INODES_FREE, IMAGEFS_INODES_FREE)

# upstream's texts
NODE_LOW_MESSAGE = "The node was low on resource: {}. "
NODE_CONDITION_MESSAGE = "The node had condition: [{}]. "
THRESHOLD_MET_MESSAGE = "Threshold quantity: {}, available: {}. "
CONTAINER_MESSAGE = "Container {} was using {}, request is {}, has larger consumption of {}. "
REASON = "Evicted"
SYSTEM_CRITICAL_PRIORITY = 2_000_000_000


@dataclass
class Observation:
    available: int
    capacity: int


def observe(summary: Obj) -> dict[str, Observation]:
    """The signals' current values from a Summary (missing figures: no observation)."""
    node = summary.get("node") or {}
    out: dict[str, Observation] = {}
    mem = node.get("memory") or {}
    if mem.get("availableBytes") is not None and mem.get("workingSetBytes") is not None:
        out[MEMORY_AVAILABLE] = Observation(mem["availableBytes"], mem["availableBytes"] + mem["workingSetBytes"])
    for prefix, fs in (("nodefs", node.get("fs") or {}), ("imagefs", (node.get("runtime") or {}).get("imageFs") or {})):
        if fs.get("availableBytes") is not None and fs.get("capacityBytes") is not None:
            out[f"{prefix}.available"] = Observation(fs["availableBytes"], fs["capacityBytes"])
        if fs.get("inodesFree") is not None and fs.get("inodes") is not None:
            out[f"{prefix}.inodesFree"] = Observation(fs["inodesFree"], fs["inodes"])
    rl = node.get("rlimit") or {}
    if rl.get("maxpid") is not None and rl.get("curproc") is not None:
        out[PID_AVAILABLE] = Observation(rl["maxpid"] - rl["curproc"], rl["maxpid"])
    return out


def thresholds_met(thresholds: list[Threshold], obs: dict[str, Observation],
                   enforce_min_reclaim: bool = False) -> list[Threshold]:
    """The thresholds whose signal is below them (below threshold + minimum reclaim with
    `enforce_min_reclaim`), grace periods aside."""
    out = []
    for t in thresholds:
        o = obs.get(t.signal)
        if o is None:
            continue
        level = t.value(o.capacity)
        if enforce_min_reclaim and t.min_reclaim is not None:
            level += t.min_reclaim.resolve(o.capacity)
        if o.available < level:
            out.append(t)
    return out


# ------------------------------------------------------------------ ranking

def _requests(pod: Obj, resource: str) -> int:
    """The pod's request of `resource` (app containers summed, the largest init
    container if more), as upstream's PodRequests."""
    spec = pod.get("spec") or {}

    def req(c: Obj) -> int:
        v = ((c.get("resources") or {}).get("requests") or {}).get(resource)
        return int(parse_quantity(v)) if v is not None else 0
    total = sum(req(c) for c in spec.get("containers") or [])
    return max([total] + [req(c) for c in spec.get("initContainers") or []])


def _usage(pod_stats: Optional[Obj], signal: str, local_volumes: int = 0) -> Optional[int]:
    """The pod's use of what `signal` measures (None without stats): memory working set,
    processes, or the disk (writable layers, logs and disk-backed emptyDirs) or inodes."""
    if pod_stats is None:
        return None
    if signal == MEMORY_AVAILABLE:
        pm = (pod_stats.get("memory") or {}).get("workingSetBytes")
        if pm is not None:
            return pm
        ws = [(c.get("memory") or {}).get("workingSetBytes") for c in pod_stats.get("containers") or []]
        return sum(w for w in ws if w is not None)
    if signal == PID_AVAILABLE:
        return (pod_stats.get("process_stats") or {}).get("process_count") or 0
    eph = pod_stats.get("ephemeral-storage") or {}
    if signal in _INODES:
        return eph.get("inodesUsed") or 0
    return (eph.get("usedBytes") or 0) + local_volumes


def rank(pods: list[Obj], stats: dict[str, Obj], signal: str,
         local_volumes: Optional[dict[str, int]] = None) -> list[Obj]:
    """Pods in eviction order for `signal`, as upstream: pods without stats first; then
    usage above request before within it, lower priority first, larger usage above the
    request first.  For PIDs: lower priority first, then more processes first.
    `local_volumes` is each pod's disk emptyDir usage (by uid)."""
    resource = "memory" if signal == MEMORY_AVAILABLE else "ephemeral-storage"
    volumes = local_volumes or {}

    def key(p: Obj) -> tuple:
        uid = p["metadata"]["uid"]
        usage = _usage(stats.get(uid), signal, volumes.get(uid, 0))
        prio = (p.get("spec") or {}).get("priority") or 0
        if signal == PID_AVAILABLE:
            return (prio, 0, 0) if usage is None else (prio, 1, -usage)
        if usage is None:
            return (0, 0, prio, 0)
        req = 0 if signal in _INODES else _requests(p, resource)
        return (1, 0 if usage > req else 1, prio, -(usage - req))
    return sorted(pods, key=key)


def is_critical(pod: Obj) -> bool:
    """Static and mirror pods and system-critical priorities are never evicted."""
    ann = (pod.get("metadata") or {}).get("annotations") or {}
    if ann.get("kubernetes.io/config.source", "api") != "api" or "kubernetes.io/config.mirror" in ann:
        return True
    return ((pod.get("spec") or {}).get("priority") or 0) >= SYSTEM_CRITICAL_PRIORITY


def eviction_message(pod: Obj, pod_stats: Optional[Obj], threshold: Threshold, obs: Observation) -> tuple[str, Obj]:
    """Upstream's eviction message and the annotations of its Evicted event: the starved
    resource, the threshold and what was left, then each container (in the Summary's
    order, init containers included) using more than it requested."""
    from kybernetes.kubelet.eviction_localstorage import quantity_string

    resource = _RESOURCE[threshold.signal]
    fmt = binary_si if resource not in ("inodes", "pids") else str
    msg = NODE_LOW_MESSAGE.format(resource)
    msg += THRESHOLD_MET_MESSAGE.format(fmt(threshold.value(obs.capacity)), fmt(obs.available))
    if pod_stats is None:
        return msg, {}
    spec = pod.get("spec") or {}
    by_name = {c["name"]: c for c in (spec.get("containers") or []) + (spec.get("initContainers") or [])}
    offending, usages = [], []
    for cs in pod_stats.get("containers") or []:
        c = by_name.get(cs.get("name"))
        if c is None:
            continue
        usage = None
        if resource == "memory":
            usage = (cs.get("memory") or {}).get("workingSetBytes")
        elif resource == "ephemeral-storage":
            rootfs, logs = (cs.get("rootfs") or {}).get("usedBytes"), (cs.get("logs") or {}).get("usedBytes")
            usage = rootfs + logs if rootfs is not None and logs is not None else None
        raw = ((c.get("resources") or {}).get("requests") or {}).get(resource)
        req = int(parse_quantity(raw)) if raw is not None else 0
        if usage is not None and usage > req:
            msg += CONTAINER_MESSAGE.format(c["name"], binary_si(usage), quantity_string(raw) if raw else "0",
                                            resource)
            offending.append(c["name"])
            usages.append(binary_si(usage))
    annotations = {"offending_containers": ",".join(offending), "offending_containers_usage": ",".join(usages),
                   "starved_resource": resource}
    return msg, annotations


# ------------------------------------------------------------------ the manager

# evict(pod, message, annotations, grace=seconds, disruption_condition=bool) -> evicted?
EvictFn = Callable[..., Awaitable[bool]]
VolumeUsageFn = Callable[[Obj], Awaitable[dict[str, int]]]


def soft_grace(pod: Obj, max_pod_grace_period: int) -> int:
    """A soft eviction's grace period: the pod's own, capped by --eviction-max-pod-grace-period."""
    own = (pod.get("spec") or {}).get("terminationGracePeriodSeconds")
    own = DEFAULT_TERMINATION_GRACE_SECONDS if own is None else int(own)
    return max(0, min(max_pod_grace_period, own))


class EvictionManager(BackgroundLoop):
    """Watches the signals, keeps the node's pressure conditions and evicts pods.
    `volume_usage(pod)` (bytes per disk-backed emptyDir) turns on local storage isolation;
    `pod_cleaned_up(pod)` says when an evicted pod's containers are gone;
    `node_event(type, reason, message)` records an event about the node."""

    def __init__(self, summary: Callable[[], Awaitable[Obj]], thresholds: list[Threshold], *,
                 active_pods: Callable[[], list[Obj]], evict: EvictFn,
                 reclaim_disk: Optional[Callable[[], Awaitable[Any]]] = None,
                 on_pressure_change: Optional[Callable[[], Any]] = None,
                 volume_usage: Optional[VolumeUsageFn] = None,
                 pod_cleaned_up: Optional[Callable[[Obj], bool]] = None,
                 node_event: Optional[Callable[[str, str, str], Any]] = None,
                 max_pod_grace_period: int = 0,
                 period: float = DEFAULT_MONITORING_PERIOD,
                 transition_period: float = DEFAULT_PRESSURE_TRANSITION_PERIOD,
                 clock: Callable[[], float] = time.monotonic):
        self.summary, self.thresholds = summary, thresholds
        self.active_pods, self.evict = active_pods, evict
        self.reclaim_disk, self.on_pressure_change = reclaim_disk, on_pressure_change
        self.volume_usage, self.max_pod_grace_period = volume_usage, max_pod_grace_period
        self.pod_cleaned_up, self.node_event = pod_cleaned_up, node_event
        self.period, self.transition_period, self.clock = period, transition_period, clock
        self.on_evicted: Optional[Callable[[str], Any]] = None  # (signal): the kubelet_evictions metric
        self._first_met: dict[Threshold, float] = {}   # threshold -> when it was first seen met
        self._last_met: dict[str, float] = {}          # condition -> when a threshold of it was last met
        self.thresholds_met: list[Threshold] = []      # met past their grace period, not yet reclaimed
        self.last_evicted: list[Obj] = []              # the pods the last pass evicted
        self.pressure: set[str] = set()

    @property
    def local_storage_isolation(self) -> bool:
        return self.volume_usage is not None

    def _update_state(self, met: list[Threshold]) -> list[Threshold]:
        """Record when thresholds and conditions were met; return those past their grace
        period (upstream's thresholdsFirstObservedAt / nodeConditionsObservedSince)."""
        now = self.clock()
        self._first_met = {t: self._first_met.get(t, now) for t in met}
        for t in met:
            self._last_met[_CONDITION[t.signal]] = now
        # a condition met in this pass shows even with a zero transition period
        pressure = {c for c, at in self._last_met.items() if now - at < self.transition_period or at == now}
        if pressure != self.pressure:
            log.info("node pressure now %s", sorted(pressure) or "none")
            self.pressure = pressure
            if self.on_pressure_change is not None:
                self.on_pressure_change()
        self.thresholds_met = [t for t, at in self._first_met.items() if now - at >= t.grace_period]
        return self.thresholds_met

    def admit(self, pod: Obj) -> Optional[tuple[str, str]]:
        """Upstream's admission under pressure: None to admit, else (reason, message).
        Under memory pressure alone, only BestEffort pods not tolerating the
        memory-pressure taint are turned away; under other pressure, every pod; critical
        pods always get in."""
        if not self.pressure or is_critical(pod):
            return None
        if self.pressure == {MEMORY_PRESSURE}:
            if qos_class(pod) != "BestEffort":
                return None
            for t in (pod.get("spec") or {}).get("tolerations") or []:
                if t.get("effect") not in (None, "", "NoSchedule"):
                    continue
                if (t.get("operator") == "Exists" and t.get("key") in (None, "", MEMORY_PRESSURE_TAINT)) or \
                        (t.get("key") == MEMORY_PRESSURE_TAINT and not t.get("value")):
                    return None
        conds = " ".join(c for c in (MEMORY_PRESSURE, DISK_PRESSURE, PID_PRESSURE) if c in self.pressure)
        return REASON, NODE_CONDITION_MESSAGE.format(conds)

    async def _local_storage_eviction(self, pods: list[Obj], stats: dict[str, Obj],
                                      volumes: dict[str, dict[str, int]]) -> list[Obj]:
        """Evict every pod over a local storage limit (1 s grace, no DisruptionTarget, as upstream)."""
        evicted = []
        for pod in pods:
            uid = pod["metadata"]["uid"]
            if uid not in stats:  # upstream skips pods the Summary does not know
                continue
            msg = local_storage_violation(pod, stats[uid], volumes.get(uid, {}))
            if msg is None or is_critical(pod):
                continue
            log.info("evicting pod %s/%s: %s", pod["metadata"].get("namespace"), pod["metadata"]["name"], msg)
            if await self.evict(pod, msg, {}, grace=IMMEDIATE_GRACE_SECONDS, disruption_condition=False):
                evicted.append(pod)
        return evicted

    async def _volumes(self, pods: list[Obj]) -> dict[str, dict[str, int]]:
        if self.volume_usage is None:
            return {}
        out = {}
        for p in pods:
            try:
                out[p["metadata"]["uid"]] = await self.volume_usage(p)
            except Exception as e:  # noqa: BLE001 - a pod whose volumes went away meanwhile
                log.debug("volume usage of %s: %s", p["metadata"].get("name"), e)
        return out

    async def synchronize(self) -> Optional[Obj]:
        """One pass: observe, update the conditions, evict pods over local storage limits
        or else at most one pod for a met threshold (the first evicted pod is returned)."""
        self.last_evicted = []
        if not self.thresholds and not self.local_storage_isolation:
            return None
        pods = self.active_pods()
        summary = await self.summary()
        obs = observe(summary)
        met = thresholds_met(self.thresholds, obs)
        if self.thresholds_met:
            # thresholds that drove evictions stay until their minimum reclaim is met
            # (of those still configured: `thresholds` may be replaced at run time)
            met += [t for t in thresholds_met(self.thresholds_met, obs, True) if t not in met and t in self.thresholds]
        met = self._update_state(met)
        stats = {p["podRef"]["uid"]: p for p in summary.get("pods") or []}
        volumes = await self._volumes(pods)
        if self.local_storage_isolation:
            evicted = await self._local_storage_eviction(pods, stats, volumes)
            if evicted:
                self.last_evicted = evicted
                return evicted[0]
        if not met:
            return None
        # memory first, then the filesystems, then PIDs, as upstream orders the signals
        met.sort(key=lambda t: (SIGNALS.index(t.signal) if t.signal in SIGNALS else len(SIGNALS)))
        threshold = met[0]
        if threshold.signal not in obs:
            return None
        if self.node_event is not None:
            self.node_event("Warning", "EvictionThresholdMet", f"Attempting to reclaim {_RESOURCE[threshold.signal]}")
        if threshold.signal in (NODEFS_AVAILABLE, NODEFS_INODES_FREE, IMAGEFS_AVAILABLE, IMAGEFS_INODES_FREE) \
                and self.reclaim_disk is not None:
            # node-level reclaim (unused images) before any pod goes: enough when every
            # threshold then holds with its minimum reclaim
            await self.reclaim_disk()
            summary = await self.summary()
            obs = observe(summary)
            if not thresholds_met(self.thresholds, obs, True):
                return None
            stats = {p["podRef"]["uid"]: p for p in summary.get("pods") or []}
        if not pods:
            log.info("eviction thresholds met, but no pods are active to evict")
            return None
        local = {uid: sum(v.values()) for uid, v in volumes.items()}
        for pod in rank(pods, stats, threshold.signal, local):
            if is_critical(pod):
                continue
            uid = pod["metadata"]["uid"]
            msg, annotations = eviction_message(pod, stats.get(uid), threshold, obs[threshold.signal])
            grace = IMMEDIATE_GRACE_SECONDS if threshold.hard else soft_grace(pod, self.max_pod_grace_period)
            log.info("evicting pod %s/%s (grace %ss): %s", pod["metadata"].get("namespace"), pod["metadata"]["name"],
                     grace, msg)
            if await self.evict(pod, msg, annotations, grace=grace, disruption_condition=True):
                self.last_evicted = [pod]
                if self.on_evicted is not None:
                    self.on_evicted(threshold.signal)
                return pod
        log.info("unable to evict any pods from the node")
        return None

    async def wait_for_cleanup(self, pods: list[Obj]) -> None:
        """After an eviction, as upstream: look again only once the pods' containers are
        gone (polled every second, at most POD_CLEANUP_TIMEOUT), so that a pod still
        shutting down in its grace period is not followed by another needlessly."""
        if self.pod_cleaned_up is None:
            return
        deadline = time.monotonic() + POD_CLEANUP_TIMEOUT
        while not all(self.pod_cleaned_up(p) for p in pods) and time.monotonic() < deadline:
            await asyncio.sleep(POD_CLEANUP_POLL)

    async def _run(self) -> None:
        while True:
            evicted = None
            try:
                evicted = await self.synchronize()
                if evicted is not None:
                    await self.wait_for_cleanup(self.last_evicted)
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001 - a failed pass is retried next period
                log.warning("eviction manager: %s", e)
            if evicted is None:
                await asyncio.sleep(self.period)

    def start(self) -> None:
        if self.thresholds or self.local_storage_isolation:
            super().start()
