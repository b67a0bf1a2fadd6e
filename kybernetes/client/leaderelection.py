"""Leader election on coordination.k8s.io/v1 Leases.

`LeaseElector` implements the controller manager's `LeaderElector` seam
(`run(on_started_leading, on_stopped_leading)`), with the semantics of upstream's
leader election:

- The Lease (`kube-system/<name>`) records holderIdentity, leaseDurationSeconds,
  acquireTime, renewTime and leaseTransitions.
- A candidate acquires the Lease when it does not exist, has no holder, or its record
  has not changed for leaseDurationSeconds *as observed on the candidate's own
  monotonic clock* (so clock skew between machines does not matter).  Taking it from
  another holder increments leaseTransitions; every write is a compare-and-swap on
  resourceVersion, so two candidates never both win.
- The leader renews every retry period.  If it cannot renew within the renew
  deadline (counted from its last successful renewal, which is shorter than the lease
  duration others wait), it stops leading: `on_stopped_leading` runs, and it
  campaigns again.
- On cancellation (clean shutdown) a leader stops its components and then releases
  the Lease by clearing holderIdentity, so a standby takes over at once.

`ElectedComponent` runs something that cannot be restarted in place (the scheduler)
only while leading, building a fresh one each term.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import re
import time
import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Awaitable, Callable, Optional

from kybernetes.client.errors import AlreadyExists, Conflict, NotFound

__all__ = [
    "LeaderElectionRecord",
    "LeaseLock",
    "LeaseElector",
    "ElectedComponent",
    "parse_duration",
    "stable_identity",
    "JITTER_FACTOR",
]

log = logging.getLogger("kybernetes.client.leaderelection")

Obj = dict[str, Any]
Callback = Callable[[], Awaitable[None]]
JITTER_FACTOR = 1.2
DEFAULT_NAMESPACE = "kube-system"


def parse_duration(v: str | float | int) -> float:
    """Seconds from a Go-style duration ("15s", "500ms", "1m30s") or a plain number."""
    if isinstance(v, (int, float)):
        return float(v)
    s = str(v).strip()
    try:
        return float(s)
    except ValueError:
        pass
    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}
    parts = re.findall(r"(\d+(?:\.\d*)?|\.\d+)(ms|us|µs|ns|h|m|s)", s)
    if not parts or "".join(n + u for n, u in parts) != s:
        raise ValueError(f"invalid duration {v!r} (want e.g. 15s, 500ms, 1m)")
    return sum(float(n) * units[u] for n, u in parts)


def stable_identity(data_dir: Path, node_name: str) -> str:
    """`<node>_<uuid>` with the uuid kept in DATA_DIR/leader-election-id, so a server
    restarted after a crash recognises (and renews) its own Lease at once instead of
    waiting out the lease duration; distinct data dirs get distinct identities."""
    p = Path(data_dir) / "leader-election-id"
    try:
        ident = p.read_text().strip()
    except FileNotFoundError:
        ident = ""
    if not ident:
        ident = str(uuid.uuid4())
        tmp = p.with_suffix(".tmp")
        tmp.write_text(ident + "\n")
        tmp.replace(p)
    return f"{node_name}_{ident}"


# ------------------------------------------------------------------ the Lease record
def format_micro_time(t: datetime) -> str:
    return t.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_micro_time(s: Optional[str]) -> Optional[datetime]:
    if not s:
        return None
    try:
        return datetime.fromisoformat(s.replace("Z", "+00:00"))
    except ValueError:
        return None


@dataclass(frozen=True)
class LeaderElectionRecord:
    holder_identity: str = ""
    lease_duration_seconds: int = 0
    acquire_time: Optional[datetime] = None
    renew_time: Optional[datetime] = None
    lease_transitions: int = 0

    @classmethod
    def from_lease(cls, lease: Obj) -> "LeaderElectionRecord":
        spec = lease.get("spec") or {}
        return cls(holder_identity=spec.get("holderIdentity") or "",
                   lease_duration_seconds=int(spec.get("leaseDurationSeconds") or 0),
                   acquire_time=parse_micro_time(spec.get("acquireTime")),
                   renew_time=parse_micro_time(spec.get("renewTime")),
                   lease_transitions=int(spec.get("leaseTransitions") or 0))

    def to_spec(self) -> Obj:
        spec: Obj = {"holderIdentity": self.holder_identity,
                     "leaseDurationSeconds": self.lease_duration_seconds,
                     "leaseTransitions": self.lease_transitions}
        if self.acquire_time is not None:
            spec["acquireTime"] = format_micro_time(self.acquire_time)
        if self.renew_time is not None:
            spec["renewTime"] = format_micro_time(self.renew_time)
        return spec


class LeaseLock:
    """Reads and writes one coordination.k8s.io/v1 Lease through a kybernetes Client.
    `create` raises AlreadyExists and `update` raises Conflict when another writer won."""

    def __init__(self, client, name: str, namespace: str = DEFAULT_NAMESPACE) -> None:
        self.client = client
        self.name = name
        self.namespace = namespace
        self.leases = client.resource("coordination.k8s.io", "v1", "leases", namespaced=True)

    def describe(self) -> str:
        return f"{self.namespace}/{self.name}"

    async def get(self) -> Optional[tuple[LeaderElectionRecord, Obj]]:
        try:
            lease = await self.leases.get(self.name, self.namespace)
        except NotFound:
            return None
        return LeaderElectionRecord.from_lease(lease), lease

    async def create(self, rec: LeaderElectionRecord) -> Obj:
        body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": self.name, "namespace": self.namespace}, "spec": rec.to_spec()}
        return await self.leases.create(body, self.namespace)

    async def update(self, lease: Obj, rec: LeaderElectionRecord) -> Obj:
        body = dict(lease)
        body["spec"] = rec.to_spec()  # metadata keeps resourceVersion: a compare-and-swap
        return await self.leases.update(body, self.namespace)


# ------------------------------------------------------------------ the elector
class LeaseElector:
    """A `LeaderElector` (see kybernetes.controllers.manager) on a Lease.

    `settled` is set once the first campaign round is decided: after the first failed
    acquisition attempt, or once `on_started_leading` has returned (or failed)."""

    def __init__(
        self,
        lock: LeaseLock,
        identity: str,
        *,
        lease_duration: float = 15.0,
        renew_deadline: float = 10.0,
        retry_period: float = 2.0,
        release_on_cancel: bool = True,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
    ) -> None:
        if not identity:
            raise ValueError("leader election: identity must not be empty")
        if lease_duration <= renew_deadline:
            raise ValueError("leader election: lease duration must be greater than the renew deadline")
        if renew_deadline <= JITTER_FACTOR * retry_period:
            raise ValueError(f"leader election: renew deadline must be greater than {JITTER_FACTOR} x retry period")
        if retry_period <= 0:
            raise ValueError("leader election: retry period must be positive")
        self.lock = lock
        self.identity = identity
        self.lease_duration = lease_duration
        self.renew_deadline = renew_deadline
        self.retry_period = retry_period
        self.release_on_cancel = release_on_cancel
        self._clock = clock
        self._wall = wall
        self._observed: Optional[LeaderElectionRecord] = None
        self._observed_at = 0.0
        self.leading = False
        self.settled = asyncio.Event()

    # -- state
    @property
    def observed(self) -> Optional[LeaderElectionRecord]:
        return self._observed

    def leader(self) -> str:
        """The holder as last observed ("" when unknown or free)."""
        return self._observed.holder_identity if self._observed is not None else ""

    def is_leader(self) -> bool:
        return self.leader() == self.identity

    def _observe(self, rec: LeaderElectionRecord) -> None:
        if rec != self._observed:
            self._observed, self._observed_at = rec, self._clock()

    # -- one attempt
    async def try_acquire_or_renew(self) -> bool:
        """One round: create, take over or renew the Lease.  True when we hold it."""
        now = self._wall()
        desired = LeaderElectionRecord(holder_identity=self.identity,
                                       lease_duration_seconds=max(1, math.ceil(self.lease_duration)),
                                       acquire_time=now, renew_time=now, lease_transitions=0)
        try:
            got = await self.lock.get()
            if got is None:
                try:
                    await self.lock.create(desired)
                except AlreadyExists:
                    return False
                self._observed, self._observed_at = desired, self._clock()
                return True
            old, lease = got
            self._observe(old)
            held_by_other = bool(old.holder_identity) and old.holder_identity != self.identity
            if held_by_other and self._observed_at + old.lease_duration_seconds > self._clock():
                return False
            if old.holder_identity == self.identity:
                desired = replace(desired, acquire_time=old.acquire_time or now,
                                  lease_transitions=old.lease_transitions)
            else:
                desired = replace(desired, lease_transitions=old.lease_transitions + 1)
            try:
                await self.lock.update(lease, desired)
            except Conflict:
                return False
            self._observed, self._observed_at = desired, self._clock()
            return True
        except asyncio.CancelledError:
            raise
        except Exception as e:  # noqa: BLE001 - transport errors, 5xx: just not this round
            log.warning("leader election %s: %s", self.lock.describe(), e)
            return False

    async def release(self) -> bool:
        """Give the Lease up if we hold it: holderIdentity cleared, 1 s duration."""
        if not self.is_leader():
            return False
        try:
            got = await self.lock.get()
            if got is None or got[0].holder_identity != self.identity:
                return False
            now = self._wall()
            rec = LeaderElectionRecord(holder_identity="", lease_duration_seconds=1, acquire_time=now,
                                       renew_time=now, lease_transitions=got[0].lease_transitions)
            await self.lock.update(got[1], rec)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # noqa: BLE001
            log.warning("leader election %s: release failed: %s", self.lock.describe(), e)
            return False
        self._observed, self._observed_at = rec, self._clock()
        log.info("leader election %s: released by %s", self.lock.describe(), self.identity)
        return True

    def _jittered(self) -> float:
        return self.retry_period * (1 + random.random() * (JITTER_FACTOR - 1))

    # -- the loops
    async def _acquire(self) -> None:
        while True:
            if await self.try_acquire_or_renew():
                log.info("leader election %s: %s acquired the lease", self.lock.describe(), self.identity)
                return
            self.settled.set()
            await asyncio.sleep(self._jittered())

    async def _renew(self) -> None:
        """Returns when leadership is lost."""
        last = self._clock()
        while True:
            await asyncio.sleep(self.retry_period)
            deadline = last + self.renew_deadline
            while True:
                remaining = deadline - self._clock()
                if remaining <= 0:
                    log.error("leader election %s: %s failed to renew within %.1fs; stepping down",
                              self.lock.describe(), self.identity, self.renew_deadline)
                    return
                try:
                    ok = await asyncio.wait_for(self.try_acquire_or_renew(), remaining)
                except asyncio.TimeoutError:
                    ok = False
                if ok:
                    last = self._clock()
                    break
                if self.leader() and not self.is_leader():
                    log.error("leader election %s: lease taken by %s; stepping down",
                              self.lock.describe(), self.leader())
                    return
                await asyncio.sleep(max(0.0, min(self.retry_period, deadline - self._clock())))

    async def run(self, on_started_leading: Callback, on_stopped_leading: Callback) -> None:
        try:
            while True:
                await self._acquire()
                self.leading = True
                started = asyncio.ensure_future(on_started_leading())
                started.add_done_callback(lambda _t: self.settled.set())
                renewing = asyncio.ensure_future(self._renew())
                try:
                    done, _ = await asyncio.wait({started, renewing}, return_when=asyncio.FIRST_COMPLETED)
                    if started in done:
                        started.result()  # a failed start ends the election with its error
                    await renewing
                finally:
                    self.leading = False
                    for t in (started, renewing):
                        if not t.done():
                            t.cancel()
                    await asyncio.gather(started, renewing, return_exceptions=True)
                    await asyncio.shield(on_stopped_leading())
                log.info("leader election %s: %s lost the lease; campaigning again", self.lock.describe(),
                         self.identity)
        finally:
            self.settled.set()
            if self.release_on_cancel and self.is_leader():
                try:
                    await asyncio.shield(asyncio.wait_for(self.release(), self.renew_deadline))
                except (asyncio.TimeoutError, asyncio.CancelledError):
                    pass


class ElectedComponent:
    """Runs a component only while `elector` leads.  `factory()` returns a started
    component (anything with `async stop()`); a new one is built for each term.
    `cleanup` (e.g. closing the elector's client) runs after the election ends."""

    def __init__(self, elector, factory: Callable[[], Awaitable[Any]], *,
                 cleanup: Optional[Callable[[], Awaitable[None]]] = None, name: str = "component") -> None:
        self.elector = elector
        self.factory = factory
        self.cleanup = cleanup
        self.name = name
        self.component: Any = None
        self._task: Optional[asyncio.Task[None]] = None

    async def _up(self) -> None:
        self.component = await self.factory()

    async def _down(self) -> None:
        c, self.component = self.component, None
        if c is not None:
            await c.stop()

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self.elector.run(self._up, self._down),
                                                                name=f"{self.name} leader election")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
            except Exception:  # noqa: BLE001
                log.exception("%s: leader election ended with an error", self.name)
        await self._down()
        if self.cleanup is not None:
            await self.cleanup()
