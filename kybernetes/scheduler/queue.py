"""The scheduling queue (upstream pkg/scheduler/backend/queue PriorityQueue).

- activeQ: pods ready to be tried, highest priority first, then oldest.
- backoffQ: pods that failed and wait out a per-pod backoff (1s doubling to 10s by
  attempts) before going back to activeQ.
- unschedulable: pods no node fits; they stay until a cluster event that could make them
  fit (a node added or changed, an assigned pod deleted, ...) moves them to activeQ or
  backoffQ, or until they have waited 5 minutes.
A pod that failed while a move request happened during its attempt goes straight to
backoffQ, so no event is lost."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Optional

from kybernetes.scheduler.framework import pod_key

Obj = dict[str, Any]

DEFAULT_INITIAL_BACKOFF = 1.0
DEFAULT_MAX_BACKOFF = 10.0
MAX_IN_UNSCHEDULABLE = 300.0

ACTIVE, BACKOFF, UNSCHEDULABLE, IN_FLIGHT = "active", "backoff", "unschedulable", "inflight"


@dataclass
class QueuedPodInfo:
    pod: Obj
    key: str
    timestamp: float                       # when (re-)added to the queue
    initial_attempt: Optional[float] = None
    attempts: int = 0
    unschedulable_plugins: set[str] = field(default_factory=set)
    where: str = ""
    backoff_handle: Optional[asyncio.TimerHandle] = None
    deleted: bool = False
    cycle: int = 0

    @property
    def priority(self) -> int:
        return int((self.pod.get("spec") or {}).get("priority") or 0)


@dataclass(frozen=True)
class ClusterEvent:
    """What changed, and which plugins' rejections it may resolve (None: any)."""

    label: str
    plugins: Optional[frozenset[str]] = None


_NODE_PLUGINS = frozenset({"NodeResourcesFit", "NodeAffinity", "TaintToleration", "NodeUnschedulable",
                           "NodePorts", "NodeName", "PodTopologySpread", "InterPodAffinity", "VolumeBinding",
                           "VolumeRestrictions", "VolumeZone"})
NODE_ADD = ClusterEvent("NodeAdd", _NODE_PLUGINS)
NODE_UPDATE = ClusterEvent("NodeUpdate", _NODE_PLUGINS)
ASSIGNED_POD_DELETE = ClusterEvent("AssignedPodDelete", frozenset(
    {"NodeResourcesFit", "NodePorts", "PodTopologySpread", "InterPodAffinity", "VolumeRestrictions"}))
ASSIGNED_POD_ADD = ClusterEvent("AssignedPodAdd", frozenset({"PodTopologySpread", "InterPodAffinity"}))
ASSIGNED_POD_UPDATE = ClusterEvent("AssignedPodUpdate", frozenset({"PodTopologySpread", "InterPodAffinity"}))
UNSCHEDULABLE_TIMEOUT = ClusterEvent("UnschedulableTimeout")
NAMESPACE_UPDATE = ClusterEvent("NamespaceUpdate", frozenset({"InterPodAffinity"}))
# storage: PVs, claims and classes the VolumeBinding plugin waits on
_VOLUME_PLUGINS = frozenset({"VolumeBinding", "VolumeZone"})
PV_ADD = ClusterEvent("PersistentVolumeAdd", _VOLUME_PLUGINS)
PV_UPDATE = ClusterEvent("PersistentVolumeUpdate", _VOLUME_PLUGINS)
PVC_ADD = ClusterEvent("PersistentVolumeClaimAdd", _VOLUME_PLUGINS | {"VolumeRestrictions"})
PVC_UPDATE = ClusterEvent("PersistentVolumeClaimUpdate", _VOLUME_PLUGINS)
STORAGE_CLASS_ADD = ClusterEvent("StorageClassAdd", _VOLUME_PLUGINS)
STORAGE_CLASS_UPDATE = ClusterEvent("StorageClassUpdate", _VOLUME_PLUGINS)


class SchedulingQueue:
    def __init__(self, *, initial_backoff: float = DEFAULT_INITIAL_BACKOFF, max_backoff: float = DEFAULT_MAX_BACKOFF,
                 max_in_unschedulable: float = MAX_IN_UNSCHEDULABLE, clock: Callable[[], float] = time.monotonic) -> None:
        self.initial_backoff = initial_backoff
        self.max_backoff = max_backoff
        self.max_in_unschedulable = max_in_unschedulable
        self.clock = clock
        self.pods: dict[str, QueuedPodInfo] = {}
        self._active: list[tuple[int, float, int, str]] = []
        self._seq = itertools.count()
        self._wake = asyncio.Event()
        self._closed = False
        self.scheduling_cycle = 0
        self.move_request_cycle = -1

    # -- bookkeeping
    def _push_active(self, q: QueuedPodInfo) -> None:
        self._cancel_backoff(q)
        q.where = ACTIVE
        heapq.heappush(self._active, (-q.priority, q.timestamp, next(self._seq), q.key))
        self._wake.set()

    def _cancel_backoff(self, q: QueuedPodInfo) -> None:
        if q.backoff_handle is not None:
            q.backoff_handle.cancel()
            q.backoff_handle = None

    def backoff_duration(self, q: QueuedPodInfo) -> float:
        d = self.initial_backoff
        for _ in range(1, q.attempts):
            d *= 2
            if d >= self.max_backoff:
                return self.max_backoff
        return min(d, self.max_backoff)

    def backoff_expiry(self, q: QueuedPodInfo) -> float:
        return q.timestamp + self.backoff_duration(q)

    def _push_backoff(self, q: QueuedPodInfo) -> None:
        remaining = self.backoff_expiry(q) - self.clock()
        if remaining <= 0:
            self._push_active(q)
            return
        q.where = BACKOFF
        self._cancel_backoff(q)
        q.backoff_handle = asyncio.get_running_loop().call_later(remaining, self._backoff_done, q.key)

    def _backoff_done(self, key: str) -> None:
        q = self.pods.get(key)
        if q is not None and q.where == BACKOFF:
            q.backoff_handle = None
            self._push_active(q)

    # -- informer side
    def add(self, pod: Obj) -> None:
        key = pod_key(pod)
        q = self.pods.get(key)
        if q is not None:
            self.update(q.pod, pod)
            return
        now = self.clock()
        q = QueuedPodInfo(pod, key, now, initial_attempt=None)
        self.pods[key] = q
        self._push_active(q)

    def update(self, old: Optional[Obj], pod: Obj) -> None:
        key = pod_key(pod)
        q = self.pods.get(key)
        if q is None:
            self.add(pod)
            return
        changed = old is None or _spec_changed(old, pod)
        q.pod = pod
        if q.where == UNSCHEDULABLE and changed:
            q.timestamp = self.clock()
            if self.backoff_expiry(q) > self.clock():
                self._push_backoff(q)
            else:
                self._push_active(q)

    def delete(self, pod: Obj) -> None:
        q = self.pods.pop(pod_key(pod), None)
        if q is not None:
            q.deleted = True
            self._cancel_backoff(q)
            q.where = ""  # a stale heap entry is skipped by pop()

    # -- scheduler side
    async def pop(self) -> QueuedPodInfo:
        while True:
            while self._active:
                _, _, _, key = heapq.heappop(self._active)
                q = self.pods.get(key)
                if q is None or q.where != ACTIVE:
                    continue
                q.where = IN_FLIGHT
                q.attempts += 1
                if q.initial_attempt is None:
                    q.initial_attempt = self.clock()
                self.scheduling_cycle += 1
                q.cycle = self.scheduling_cycle
                return q
            if self._closed:
                raise asyncio.CancelledError()
            self._wake.clear()
            await self._wake.wait()

    def done(self, q: QueuedPodInfo) -> None:
        """The pod was scheduled (assumed): it leaves the queue."""
        if self.pods.get(q.key) is q:
            del self.pods[q.key]

    def requeue_unschedulable(self, q: QueuedPodInfo, plugins: Iterable[str], cycle: int) -> None:
        """After a failed attempt: to unschedulable, or to backoff if a move request came
        during the attempt (upstream AddUnschedulableIfNotPresent)."""
        if q.deleted or self.pods.get(q.key) is not q:
            return
        q.unschedulable_plugins = set(plugins)
        q.timestamp = self.clock()
        if self.move_request_cycle >= cycle:
            self._push_backoff(q)
        else:
            q.where = UNSCHEDULABLE

    def requeue_error(self, q: QueuedPodInfo) -> None:
        """After an error (not a fit failure): straight to backoff."""
        if q.deleted or self.pods.get(q.key) is not q:
            return
        q.unschedulable_plugins = set()
        q.timestamp = self.clock()
        self._push_backoff(q)

    def requeue_after_bind_failure(self, q: QueuedPodInfo) -> None:
        self.pods.setdefault(q.key, q)
        self.requeue_error(q)

    def move_all(self, event: ClusterEvent, hint: Optional[Callable[[Obj], bool]] = None) -> int:
        """MoveAllToActiveOrBackoffQueue: unschedulable pods whose rejecting plugins care
        about `event` go to activeQ (or backoffQ while still backing off).  `hint(pod)`,
        when given, is the event's queueing hint: False leaves a pod where it is (e.g. a
        claim changed that the pod does not use)."""
        moved = 0
        now = self.clock()
        for q in list(self.pods.values()):
            if q.where != UNSCHEDULABLE:
                continue
            if event.plugins is not None and q.unschedulable_plugins and not (q.unschedulable_plugins & event.plugins):
                continue
            if hint is not None and q.unschedulable_plugins and not hint(q.pod):
                continue
            if self.backoff_expiry(q) > now:
                self._push_backoff(q)
            else:
                self._push_active(q)
            moved += 1
        self.move_request_cycle = self.scheduling_cycle
        return moved

    def flush_unschedulable_leftover(self) -> None:
        now = self.clock()
        for q in list(self.pods.values()):
            if q.where == UNSCHEDULABLE and now - q.timestamp > self.max_in_unschedulable:
                self._push_backoff(q) if self.backoff_expiry(q) > now else self._push_active(q)

    def close(self) -> None:
        self._closed = True
        for q in self.pods.values():
            self._cancel_backoff(q)
        self._wake.set()

    # -- introspection (tests, metrics)
    def counts(self) -> dict[str, int]:
        out = {ACTIVE: 0, BACKOFF: 0, UNSCHEDULABLE: 0, IN_FLIGHT: 0}
        for q in self.pods.values():
            if q.where in out:
                out[q.where] += 1
        return out

    def where(self, key: str) -> Optional[str]:
        q = self.pods.get(key)
        return q.where if q is not None else None


def _spec_changed(old: Obj, new: Obj) -> bool:
    om, nm = old.get("metadata") or {}, new.get("metadata") or {}
    return (old.get("spec") != new.get("spec") or om.get("labels") != nm.get("labels")
            or om.get("annotations") != nm.get("annotations"))
