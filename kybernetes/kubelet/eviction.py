"""Node-pressure eviction, as upstream's eviction manager does it with hard thresholds:
every monitoring period the kubelet reads the Summary API, compares the signals
(memory.available, nodefs.available, nodefs.inodesFree, imagefs.available,
imagefs.inodesFree) with `--eviction-hard`, reports MemoryPressure/DiskPressure on the
node (kept for `--eviction-pressure-transition-period` after the signal recovers) and,
while a threshold is met, evicts one pod per period: the pods using more than they
requested first, then lower priority, then by usage above the request.

    mgr = EvictionManager(stats.summary, parse_thresholds(DEFAULT_EVICTION_HARD),
                          active_pods=list_pods, evict=evict_pod)
    await mgr.synchronize()      # one pass; mgr.start() runs it every 10 s
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Awaitable, Callable, Optional

from kybernetes.kubelet.qos_cgroups import qos_class
from kybernetes.scheduler.resources import parse_quantity

log = logging.getLogger("kybernetes.kubelet.eviction")

Obj = dict[str, Any]

MEMORY_AVAILABLE = "memory.available"
NODEFS_AVAILABLE = "nodefs.available"
NODEFS_INODES_FREE = "nodefs.inodesFree"
IMAGEFS_AVAILABLE = "imagefs.available"
IMAGEFS_INODES_FREE = "imagefs.inodesFree"
SIGNALS = (MEMORY_AVAILABLE, NODEFS_AVAILABLE, NODEFS_INODES_FREE, IMAGEFS_AVAILABLE, IMAGEFS_INODES_FREE)

# upstream's defaults (DefaultEvictionHard on Linux)
DEFAULT_EVICTION_HARD = ("memory.available<100Mi,nodefs.available<10%,nodefs.inodesFree<5%,"
                         "imagefs.available<15%,imagefs.inodesFree<5%")
DEFAULT_MONITORING_PERIOD = 10.0
DEFAULT_PRESSURE_TRANSITION_PERIOD = 300.0

MEMORY_PRESSURE, DISK_PRESSURE = "MemoryPressure", "DiskPressure"
MEMORY_PRESSURE_TAINT = "node.kubernetes.io/memory-pressure"
_CONDITION = {MEMORY_AVAILABLE: MEMORY_PRESSURE, NODEFS_AVAILABLE: DISK_PRESSURE, NODEFS_INODES_FREE: DISK_PRESSURE,
              IMAGEFS_AVAILABLE: DISK_PRESSURE, IMAGEFS_INODES_FREE: DISK_PRESSURE}
# the resource a signal starves (names in the eviction message)
_RESOURCE = {MEMORY_AVAILABLE: "memory", NODEFS_AVAILABLE: "ephemeral-storage", IMAGEFS_AVAILABLE: "ephemeral-storage",
             NODEFS_INODES_FREE: "inodes", IMAGEFS_INODES_FREE: "inodes"}

# upstream's texts
NODE_LOW_MESSAGE = "The node was low on resource: {}. "
NODE_CONDITION_MESSAGE = "The node had condition: [{}]. "
THRESHOLD_MET_MESSAGE = "Threshold quantity: {}, available: {}. "
CONTAINER_MESSAGE = "Container {} was using {}, request is {}, has larger consumption of {}. "
REASON = "Evicted"
SYSTEM_CRITICAL_PRIORITY = 2_000_000_000


@dataclass(frozen=True)
class Threshold:
    """`signal < quantity` (bytes or inodes) or `signal < percentage` of capacity."""
    signal: str
    quantity: Optional[int] = None
    percentage: Optional[Decimal] = None

    def value(self, capacity: int) -> int:
        if self.quantity is not None:
            return self.quantity
        return int(capacity * (self.percentage or 0))

    def __str__(self) -> str:
        v = f"{self.percentage * 100:f}".rstrip("0").rstrip(".") + "%" if self.percentage is not None \
            else binary_si(self.quantity or 0)
        return f"{self.signal}<{v}"


def parse_thresholds(text: str) -> list[Threshold]:
    """`--eviction-hard` (`signal<value,...`, value a quantity or a percentage).  Raises
    ValueError for an unknown signal, another operator or a bad value."""
    out: dict[str, Threshold] = {}
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        if "<" not in part:
            raise ValueError(f"invalid eviction threshold syntax {part!r}, expected <signal><operator><value>")
        signal, value = (s.strip() for s in part.split("<", 1))
        if signal not in SIGNALS:
            raise ValueError(f"unsupported eviction signal {signal}")
        if signal in out:
            raise ValueError(f"found duplicate eviction threshold for signal {signal}")
        if value.endswith("%"):
            try:
                pct = Decimal(value[:-1])
            except InvalidOperation:
                raise ValueError(f"invalid percentage {value!r} for eviction signal {signal}") from None
            if pct <= 0 or pct > 100:
                raise ValueError(f"eviction percentage threshold {signal} must be >= 0% and <= 100%: {value}")
            out[signal] = Threshold(signal, percentage=pct / 100)
        else:
            try:
                q = parse_quantity(value)
            except Exception:  # noqa: BLE001 - any malformed quantity
                raise ValueError(f"invalid quantity {value!r} for eviction signal {signal}") from None
            if q < 0:
                raise ValueError(f"eviction threshold {signal} must be positive: {value}")
            out[signal] = Threshold(signal, quantity=int(q))
    return list(out.values())


def binary_si(n: int) -> str:
    """An integer as upstream's resource.Quantity prints it in BinarySI (the largest
    binary suffix that divides it exactly, the plain number otherwise)."""
    for suffix, mult in (("Ei", 1 << 60), ("Pi", 1 << 50), ("Ti", 1 << 40), ("Gi", 1 << 30), ("Mi", 1 << 20),
                         ("Ki", 1 << 10)):
        if n and n % mult == 0:
            return f"{n // mult}{suffix}"
    return str(n)


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
    return out


def thresholds_met(thresholds: list[Threshold], obs: dict[str, Observation]) -> list[Threshold]:
    return [t for t in thresholds if t.signal in obs and obs[t.signal].available < t.value(obs[t.signal].capacity)]


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


def _usage(pod_stats: Optional[Obj], signal: str) -> Optional[int]:
    if pod_stats is None:
        return None
    if signal == MEMORY_AVAILABLE:
        ws = [(c.get("memory") or {}).get("workingSetBytes") for c in pod_stats.get("containers") or []]
        return sum(w for w in ws if w is not None)
    eph = pod_stats.get("ephemeral-storage") or {}
    if signal in (NODEFS_INODES_FREE, IMAGEFS_INODES_FREE):
        return eph.get("inodesUsed") or 0
    if signal == IMAGEFS_AVAILABLE:  # only the writable layers live on the image filesystem
        return sum((c.get("rootfs") or {}).get("usedBytes") or 0 for c in pod_stats.get("containers") or [])
    return eph.get("usedBytes") or 0


def rank(pods: list[Obj], stats: dict[str, Obj], signal: str) -> list[Obj]:
    """Pods in eviction order for `signal`: usage above request first (pods without
    stats before those), then lower priority, then larger usage above the request."""
    resource = "memory" if signal == MEMORY_AVAILABLE else "ephemeral-storage"

    def key(p: Obj) -> tuple:
        usage = _usage(stats.get(p["metadata"]["uid"]), signal)
        if usage is None:
            return (0, 0, 0)
        req = 0 if signal in (NODEFS_INODES_FREE, IMAGEFS_INODES_FREE) else _requests(p, resource)
        prio = (p.get("spec") or {}).get("priority") or 0
        return (0 if usage > req else 1, prio, -(usage - req))
    return sorted(pods, key=key)


def is_critical(pod: Obj) -> bool:
    """Static and mirror pods and system-critical priorities are never evicted."""
    ann = (pod.get("metadata") or {}).get("annotations") or {}
    if ann.get("kubernetes.io/config.source", "api") != "api" or "kubernetes.io/config.mirror" in ann:
        return True
    return ((pod.get("spec") or {}).get("priority") or 0) >= SYSTEM_CRITICAL_PRIORITY


def eviction_message(pod: Obj, pod_stats: Optional[Obj], threshold: Threshold, obs: Observation) -> tuple[str, Obj]:
    """Upstream's eviction message and the annotations of its Evicted event."""
    resource = _RESOURCE[threshold.signal]
    fmt = binary_si if resource != "inodes" else str
    msg = NODE_LOW_MESSAGE.format(resource)
    msg += THRESHOLD_MET_MESSAGE.format(fmt(threshold.value(obs.capacity)), fmt(obs.available))
    offending, usages = [], []
    by_name = {c.get("name"): c for c in (pod_stats or {}).get("containers") or []}
    for c in (pod.get("spec") or {}).get("containers") or []:
        cs = by_name.get(c["name"])
        if cs is None:
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
            msg += CONTAINER_MESSAGE.format(c["name"], binary_si(usage), raw if raw is not None else "0", resource)
            offending.append(c["name"])
            usages.append(binary_si(usage))
    annotations = {"offending_containers": ",".join(offending), "offending_containers_usage": ",".join(usages),
                   "starved_resource": resource}
    return msg, annotations


# ------------------------------------------------------------------ the manager

EvictFn = Callable[[Obj, str, Obj], Awaitable[bool]]


class EvictionManager:
    """Watches the signals, keeps the node's pressure conditions and evicts pods."""

    def __init__(self, summary: Callable[[], Awaitable[Obj]], thresholds: list[Threshold], *,
                 active_pods: Callable[[], list[Obj]], evict: EvictFn,
                 reclaim_disk: Optional[Callable[[], Awaitable[Any]]] = None,
                 on_pressure_change: Optional[Callable[[], Any]] = None,
                 period: float = DEFAULT_MONITORING_PERIOD,
                 transition_period: float = DEFAULT_PRESSURE_TRANSITION_PERIOD,
                 clock: Callable[[], float] = time.monotonic):
        self.summary, self.thresholds = summary, thresholds
        self.active_pods, self.evict = active_pods, evict
        self.reclaim_disk, self.on_pressure_change = reclaim_disk, on_pressure_change
        self.period, self.transition_period, self.clock = period, transition_period, clock
        self._last_met: dict[str, float] = {}  # condition -> when a threshold of it was last met
        self.pressure: set[str] = set()
        self._task: Optional[asyncio.Task] = None

    def _update_pressure(self, met: list[Threshold]) -> None:
        now = self.clock()
        for t in met:
            self._last_met[_CONDITION[t.signal]] = now
        pressure = {c for c, at in self._last_met.items() if now - at < self.transition_period or
                    any(_CONDITION[t.signal] == c for t in met)}
        if pressure != self.pressure:
            log.info("node pressure now %s", sorted(pressure) or "none")
            self.pressure = pressure
            if self.on_pressure_change is not None:
                self.on_pressure_change()

    def admit(self, pod: Obj) -> Optional[tuple[str, str]]:
        """Upstream's admission under pressure: None to admit, else (reason, message).
        Under memory pressure alone, only BestEffort pods not tolerating the
        memory-pressure taint are turned away; under disk pressure, every pod; critical
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
        conds = " ".join(c for c in (MEMORY_PRESSURE, DISK_PRESSURE) if c in self.pressure)
        return REASON, NODE_CONDITION_MESSAGE.format(conds)

    async def synchronize(self) -> Optional[Obj]:
        """One pass: observe, update the conditions, evict at most one pod (returned)."""
        if not self.thresholds:
            return None
        summary = await self.summary()
        obs = observe(summary)
        met = thresholds_met(self.thresholds, obs)
        self._update_pressure(met)
        if not met:
            return None
        # memory first, then the filesystems, as upstream orders the signals
        met.sort(key=lambda t: SIGNALS.index(t.signal))
        threshold = met[0]
        if threshold.signal != MEMORY_AVAILABLE and self.reclaim_disk is not None:
            # node-level reclaim (unused images) before any pod goes
            await self.reclaim_disk()
            summary = await self.summary()
            obs = observe(summary)
            if threshold not in thresholds_met(self.thresholds, obs):
                return None
        stats = {p["podRef"]["uid"]: p for p in summary.get("pods") or []}
        candidates = [p for p in self.active_pods() if not is_critical(p)]
        for pod in rank(candidates, stats, threshold.signal):
            uid = pod["metadata"]["uid"]
            msg, annotations = eviction_message(pod, stats.get(uid), threshold, obs[threshold.signal])
            log.info("evicting pod %s/%s: %s", pod["metadata"].get("namespace"), pod["metadata"]["name"], msg)
            if await self.evict(pod, msg, annotations):
                return pod
        return None

    async def _loop(self) -> None:
        while True:
            try:
                await self.synchronize()
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001 - a failed pass is retried next period
                log.warning("eviction manager: %s", e)
            await asyncio.sleep(self.period)

    def start(self) -> None:
        if self._task is None and self.thresholds:
            self._task = asyncio.ensure_future(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
