"""LeaseElector against an in-memory Lease (compare-and-swap on a version)."""

from __future__ import annotations

import asyncio
import copy
import time
from datetime import datetime, timezone

import pytest

from kybernetes.client.errors import AlreadyExists, Conflict
from kybernetes.client.leaderelection import (
    ElectedComponent,
    LeaderElectionRecord,
    LeaseElector,
    parse_duration,
    stable_identity,
)


def _status(code: int, reason: str):
    return {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": code, "reason": reason, "message": reason}


class MemLease:
    """One Lease shared by several electors; `fail` makes every call raise."""

    def __init__(self) -> None:
        self.obj = None
        self.version = 0
        self.fail = False
        self.writes: list[LeaderElectionRecord] = []

    def describe(self) -> str:
        return "kube-system/test"

    def _check(self) -> None:
        if self.fail:
            raise OSError("datastore down")

    async def get(self):
        self._check()
        if self.obj is None:
            return None
        o = copy.deepcopy(self.obj)
        return LeaderElectionRecord.from_lease(o), o

    async def create(self, rec):
        self._check()
        if self.obj is not None:
            raise AlreadyExists(_status(409, "AlreadyExists"))
        self.version += 1
        self.obj = {"metadata": {"name": "test", "resourceVersion": str(self.version)}, "spec": rec.to_spec()}
        self.writes.append(rec)
        return copy.deepcopy(self.obj)

    async def update(self, lease, rec):
        self._check()
        if lease["metadata"]["resourceVersion"] != str(self.version):
            raise Conflict(_status(409, "Conflict"))
        self.version += 1
        self.obj = {"metadata": {"name": "test", "resourceVersion": str(self.version)}, "spec": rec.to_spec()}
        self.writes.append(rec)
        return copy.deepcopy(self.obj)

    @property
    def record(self) -> LeaderElectionRecord:
        return LeaderElectionRecord.from_lease(self.obj)


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def _elector(lease, ident, clock=None, **kw):
    kw.setdefault("lease_duration", 15)
    kw.setdefault("renew_deadline", 10)
    kw.setdefault("retry_period", 2)
    return LeaseElector(lease, ident, clock=clock or time.monotonic, **kw)


async def wait_for(cond, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


def test_parse_duration():
    assert parse_duration("15s") == 15
    assert parse_duration("500ms") == 0.5
    assert parse_duration("1m30s") == 90
    assert parse_duration("2") == 2
    with pytest.raises(ValueError):
        parse_duration("soon")


def test_config_validation():
    with pytest.raises(ValueError):
        _elector(MemLease(), "a", lease_duration=10, renew_deadline=10)
    with pytest.raises(ValueError):
        _elector(MemLease(), "a", renew_deadline=2, retry_period=2)
    with pytest.raises(ValueError):
        _elector(MemLease(), "")


def test_stable_identity(tmp_path):
    (tmp_path / "a").mkdir()
    a = stable_identity(tmp_path / "a", "n1")
    assert a == stable_identity(tmp_path / "a", "n1")
    (tmp_path / "b").mkdir()
    assert stable_identity(tmp_path / "b", "n1") != a
    assert a.startswith("n1_")


async def test_acquire_create_renew_and_takeover_after_expiry():
    lease, clock = MemLease(), FakeClock()
    a, b = _elector(lease, "a", clock), _elector(lease, "b", clock)
    assert await a.try_acquire_or_renew()
    rec = lease.record
    assert (rec.holder_identity, rec.lease_duration_seconds, rec.lease_transitions) == ("a", 15, 0)
    assert rec.acquire_time is not None and rec.renew_time == rec.acquire_time
    assert not await b.try_acquire_or_renew()  # held and fresh
    assert b.leader() == "a" and not b.is_leader()
    clock.t += 5
    assert await a.try_acquire_or_renew()  # renew keeps acquireTime and transitions
    assert lease.record.acquire_time == rec.acquire_time and lease.record.lease_transitions == 0
    assert lease.record.renew_time >= rec.renew_time
    # b observed the renewal only now: the lease counts from b's own observation
    clock.t += 14
    assert not await b.try_acquire_or_renew()  # first sight of the renewed record
    clock.t += 14
    assert not await b.try_acquire_or_renew()
    clock.t += 1.5
    assert await b.try_acquire_or_renew()
    assert lease.record.holder_identity == "b" and lease.record.lease_transitions == 1
    assert not await a.try_acquire_or_renew()  # a sees b's fresh record
    assert a.leader() == "b"


async def test_empty_holder_is_free_and_release_clears_holder():
    lease, clock = MemLease(), FakeClock()
    a, b = _elector(lease, "a", clock), _elector(lease, "b", clock)
    assert await a.try_acquire_or_renew()
    assert not await b.try_acquire_or_renew()
    assert await a.release()
    assert lease.record.holder_identity == "" and lease.record.lease_transitions == 0
    assert await b.try_acquire_or_renew()  # no waiting for expiry
    assert lease.record.lease_transitions == 1
    assert not await a.release()  # not the holder: nothing written
    assert lease.record.holder_identity == "b"


async def test_compare_and_swap_one_winner():
    lease = MemLease()
    es = [_elector(lease, f"e{i}") for i in range(5)]
    results = await asyncio.gather(*(e.try_acquire_or_renew() for e in es))
    assert sum(results) == 1
    assert lease.record.holder_identity == es[results.index(True)].identity


async def test_run_leads_steps_down_on_failed_renewal_and_releases_on_cancel():
    lease = MemLease()
    kw = dict(lease_duration=1.0, renew_deadline=0.5, retry_period=0.1)
    a, b = _elector(lease, "a", **kw), _elector(lease, "b", **kw)
    events: list[str] = []

    def cbs(name):
        async def up():
            events.append(f"{name}+")

        async def down():
            events.append(f"{name}-")
        return up, down

    ta = asyncio.create_task(a.run(*cbs("a")))
    await wait_for(lambda: events == ["a+"])
    assert a.settled.is_set() and a.leading
    tb = asyncio.create_task(b.run(*cbs("b")))
    await wait_for(lambda: b.settled.is_set())
    await asyncio.sleep(0.3)
    assert events == ["a+"] and lease.record.holder_identity == "a"

    # the datastore goes away: a must stop within the renew deadline
    lease.fail = True
    t0 = time.monotonic()
    await wait_for(lambda: "a-" in events, timeout=3)
    assert time.monotonic() - t0 < 0.5 + 0.4
    lease.fail = False
    # b takes over once the record has been unchanged for the lease duration (or a renews first)
    await wait_for(lambda: events.count("a+") + events.count("b+") == 2, timeout=5)
    holder = lease.record.holder_identity
    assert (events[-1] == f"{holder}+")

    leader_task, other = (ta, tb) if holder == "a" else (tb, ta)
    leader_task.cancel()
    await asyncio.gather(leader_task, return_exceptions=True)
    assert events[-1] == f"{holder}-"
    # released on clean shutdown: the other candidate leads at once
    await wait_for(lambda: lease.record.holder_identity not in ("", holder), timeout=2)
    other.cancel()
    await asyncio.gather(other, return_exceptions=True)
    assert lease.record.holder_identity == ""


async def test_lost_to_another_holder_steps_down():
    lease = MemLease()
    a = _elector(lease, "a", lease_duration=1.0, renew_deadline=0.5, retry_period=0.1)
    events: list[str] = []

    async def up():
        events.append("+")

    async def down():
        events.append("-")

    t = asyncio.create_task(a.run(up, down))
    await wait_for(lambda: events == ["+"])
    # someone overwrites the lease (e.g. an operator): a steps down on its next renewal
    lease.version += 1
    lease.obj = {"metadata": {"name": "test", "resourceVersion": str(lease.version)},
                 "spec": LeaderElectionRecord("intruder", 60, datetime.now(timezone.utc),
                                              datetime.now(timezone.utc), 3).to_spec()}
    await wait_for(lambda: events == ["+", "-"], timeout=2)
    t.cancel()
    await asyncio.gather(t, return_exceptions=True)
    assert lease.record.holder_identity == "intruder"  # not ours: not released


async def test_failed_start_ends_election_and_releases():
    lease = MemLease()
    a = _elector(lease, "a", lease_duration=1.0, renew_deadline=0.5, retry_period=0.1)
    stopped = []

    async def up():
        raise RuntimeError("boom")

    async def down():
        stopped.append(1)

    with pytest.raises(RuntimeError):
        await a.run(up, down)
    assert stopped == [1] and lease.record.holder_identity == ""


async def test_elected_component_builds_fresh_component_each_term():
    lease = MemLease()
    a = _elector(lease, "a", lease_duration=1.0, renew_deadline=0.5, retry_period=0.1)
    built = []

    class Comp:
        def __init__(self):
            self.stopped = False

        async def stop(self):
            self.stopped = True

    async def factory():
        c = Comp()
        built.append(c)
        return c

    cleaned = []

    async def cleanup():
        cleaned.append(1)

    ec = ElectedComponent(a, factory, cleanup=cleanup)
    await ec.start()
    await wait_for(lambda: ec.component is not None)
    lease.fail = True
    await wait_for(lambda: ec.component is None and built[0].stopped, timeout=2)
    lease.fail = False
    await wait_for(lambda: len(built) == 2 and ec.component is built[1], timeout=5)
    await ec.stop()
    assert built[1].stopped and cleaned == [1] and lease.record.holder_identity == ""
