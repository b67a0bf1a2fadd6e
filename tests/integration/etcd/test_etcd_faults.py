"""EtcdStore against real etcd failures: restarts, a killed cluster leader, an outage,
compaction by someone else, progress on a quiet prefix.

Writers follow the client's side of the contract: an UnavailableError is
retryable, so they retry the same create; KeyExistsError on a retry means the
earlier attempt was applied after all.  Afterwards every acknowledged write
must be there, and a watch held across the failure must have delivered exactly
the history (compared with a fresh replay): no gap, no duplicate, in order."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from fixtures.etcd import EtcdCluster, require_etcd

from kybernetes.storage import (
    CompactedError,
    Event,
    KeyExistsError,
    StorageError,
    UnavailableError,
    WatchCache,
)
from kybernetes.storage.etcd import EtcdStore, EtcdWatch

P = "/registry/things/"


@pytest.fixture
def single(tmp_path: Path):
    require_etcd()
    with EtcdCluster(tmp_path / "etcd1", size=1) as cl:
        yield cl


@pytest.fixture
def trio(tmp_path: Path):
    require_etcd()
    with EtcdCluster(tmp_path / "etcd3", size=3) as cl:
        yield cl


class Writers:
    """`n` writers creating `per` keys each, retrying retryable errors."""

    def __init__(self, store: EtcdStore, n: int = 3, per: int = 400, deadline: float = 60.0) -> None:
        self.store = store
        self.n = n
        self.per = per
        self.deadline = time.monotonic() + deadline
        self.acked: dict[str, int] = {}  # key -> revision
        self.retryable: list[BaseException] = []
        self.other: list[BaseException] = []
        self.tasks: list[asyncio.Task] = []

    def value(self, key: str) -> bytes:
        return ("value of " + key).encode()

    async def _one(self, w: int) -> None:
        i = 0
        while i < self.per:
            if time.monotonic() > self.deadline:
                raise AssertionError(f"writer {w} stuck at {i}: {self.retryable[-3:]} {self.other[-3:]}")
            key = f"{P}w{w}/{i:05d}"
            try:
                kv = await self.store.create(key, self.value(key))
                self.acked[key] = kv.mod_revision
                i += 1
            except KeyExistsError as e:  # a failed-looking attempt had been applied
                assert e.current is None or e.current.value == self.value(key)
                self.acked[key] = e.current.mod_revision if e.current else 0
                i += 1
            except UnavailableError as e:
                self.retryable.append(e)
                await asyncio.sleep(0.05)
            except StorageError as e:
                self.other.append(e)
                await asyncio.sleep(0.05)

    def start(self) -> None:
        self.tasks = [asyncio.create_task(self._one(w)) for w in range(self.n)]

    async def until_acked(self, count: int, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while len(self.acked) < count:
            assert time.monotonic() < deadline, f"only {len(self.acked)} writes acknowledged"
            for t in self.tasks:
                if t.done():
                    t.result()
            await asyncio.sleep(0.01)

    async def finish(self) -> None:
        await asyncio.gather(*self.tasks)


class Collector:
    """Drains a watch into a list in the background."""

    def __init__(self, w: EtcdWatch) -> None:
        self.w = w
        self.events: list[Event] = []
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        async for ev in self.w:
            self.events.append(ev)

    async def until_key(self, key: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not any(e.kv.key == key for e in self.events[-50:]):
            if self.task.done():
                self.task.result()
                raise AssertionError("watch ended")
            assert time.monotonic() < deadline, f"watch never delivered {key} ({len(self.events)} events)"
            await asyncio.sleep(0.01)

    async def close(self) -> None:
        await self.w.aclose()
        self.task.cancel()
        try:
            await self.task
        except (asyncio.CancelledError, StopAsyncIteration):
            pass


async def _replay(store: EtcdStore, start: int, until_key: str) -> list[tuple[int, str, str]]:
    w = store.watch(P, start)
    out = []
    try:
        async with asyncio.timeout(30):
            async for ev in w:
                out.append((ev.revision, ev.type, ev.kv.key))
                if ev.kv.key == until_key:
                    break
    finally:
        await w.aclose()
    return out


async def _check(store: EtcdStore, writers: Writers, col: Collector, start: int) -> None:
    # a sentinel after every writer finished: the watch is complete once it arrives
    end = await _retry(lambda: store.create(P + "zz-end", b""))
    await col.until_key(end.key)
    seen = [(e.revision, e.type, e.kv.key) for e in col.events]
    revs = [r for r, _, _ in seen]
    assert revs == sorted(set(revs)), "duplicates or reordering in the watch"
    # no gaps: exactly what a fresh replay of etcd's history holds
    assert seen == await _replay(store, start, end.key)
    # every acknowledged write is there, with its value
    res = await _retry(lambda: store.list(P + "w"))
    got = {kv.key: kv.value for kv in res.items}
    for key in writers.acked:
        assert got.get(key) == writers.value(key), f"acknowledged write {key} missing"
    assert len(got) == writers.n * writers.per
    assert {e.kv.key for e in col.events} >= set(writers.acked)
    assert writers.other == [], f"non-retryable errors: {writers.other[:5]}"


async def _retry(fn, timeout: float = 30):
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await fn()
        except UnavailableError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)


async def test_watch_resumes_across_etcd_restart_during_writes(single: EtcdCluster) -> None:
    store = EtcdStore(single.endpoints, compact_interval=0, request_timeout=2)
    await store.start()
    try:
        start = await store.current_revision()
        w = store.watch(P, start)
        col = Collector(w)
        writers = Writers(store, n=3, per=300)
        writers.start()
        await writers.until_acked(200)
        m = single.members[0]
        m.kill()  # SIGKILL mid-stream, writes in flight
        await asyncio.sleep(0.5)
        await asyncio.to_thread(single.restart, m)
        await writers.finish()
        await _check(store, writers, col, start)
        assert w.reconnects >= 1
        assert writers.retryable, "the outage should have been visible to writers"
        await col.close()
    finally:
        await store.close()


async def test_three_members_leader_killed_mid_stream(trio: EtcdCluster) -> None:
    store = EtcdStore(trio.endpoints, compact_interval=0, request_timeout=5)
    await store.start()
    try:
        start = await store.current_revision()
        col = Collector(store.watch(P, start))
        writers = Writers(store, n=4, per=250)
        writers.start()
        await writers.until_acked(300)
        leader = await asyncio.to_thread(trio.leader)
        leader.kill()
        t_kill = time.monotonic()
        before = len(writers.acked)
        # the survivors elect a leader and writes go on
        await writers.until_acked(before + 100, timeout=30)
        recovery = time.monotonic() - t_kill
        await writers.finish()
        await _check(store, writers, col, start)
        print(f"leader killed: writes resumed after {recovery:.2f}s; {len(writers.retryable)} retryable errors"
              f" ({sorted({str(e)[:60] for e in writers.retryable})[:4]}); watch reconnects {col.w.reconnects}")
        # the killed member rejoins and catches up
        await asyncio.to_thread(trio.restart, leader)
        assert recovery < 20
        await col.close()
    finally:
        await store.close()


async def test_member_restarts_one_by_one_with_watch_open(trio: EtcdCluster) -> None:
    """Whichever member the watch stream is on goes away at some point."""
    store = EtcdStore(trio.endpoints, compact_interval=0, request_timeout=5)
    await store.start()
    try:
        start = await store.current_revision()
        w = store.watch(P, start)
        col = Collector(w)
        writers = Writers(store, n=2, per=300)
        writers.start()
        acked = 100
        for m in trio.members:
            await writers.until_acked(acked)
            m.stop()
            await asyncio.to_thread(trio.restart, m)
            acked += 100
        await writers.finish()
        await _check(store, writers, col, start)
        assert w.reconnects >= 1
        await col.close()
    finally:
        await store.close()


async def test_outage_gives_unavailable_then_recovers_without_reopening(single: EtcdCluster) -> None:
    store = EtcdStore(single.endpoints, compact_interval=0, request_timeout=1)
    await store.start()
    try:
        kv = await store.create(P + "a", b"1")
        w = store.watch(P, kv.mod_revision)
        col = Collector(w)
        m = single.members[0]
        m.stop()
        for op in (
            lambda: store.get(P + "a"),
            lambda: store.list(P),
            lambda: store.create(P + "b", b"2"),
            lambda: store.update(P + "a", b"x", kv.mod_revision),
            lambda: store.delete(P + "a"),
            lambda: store.current_revision(),
        ):
            t0 = time.monotonic()
            with pytest.raises(UnavailableError):
                await op()
            assert time.monotonic() - t0 < 3
        assert not w.ended  # a watch waits for etcd to come back
        await asyncio.to_thread(single.restart, m)
        b = await _retry(lambda: store.create(P + "b", b"2"))
        await col.until_key(b.key)
        assert [e.kv.key for e in col.events] == [b.key]
        await col.close()
    finally:
        await store.close()


async def test_compaction_by_another_client_ends_watch(single: EtcdCluster) -> None:
    a = EtcdStore(single.endpoints, compact_interval=0)
    b = EtcdStore(single.endpoints, compact_interval=0)
    await a.start()
    await b.start()
    try:
        first = await a.create(P + "k", b"0")
        kv = first
        for i in range(5):
            kv = await a.update(kv.key, str(i).encode(), kv.mod_revision)
        await b.compact(kv.mod_revision)
        assert await a.compacted_revision() == kv.mod_revision
        w = a.watch(P, first.mod_revision)
        with pytest.raises(CompactedError) as ei:
            await asyncio.wait_for(w.__anext__(), 5)
        assert ei.value.compacted == kv.mod_revision
        with pytest.raises(CompactedError):
            await a.list(P, revision=first.mod_revision)
        # a third store learns the compaction point when it starts
        c = EtcdStore(single.endpoints, compact_interval=0)
        await c.start()
        assert await c.compacted_revision() == kv.mod_revision
        await c.close()
    finally:
        await a.close()
        await b.close()


async def test_progress_on_a_quiet_prefix(single: EtcdCluster) -> None:
    store = EtcdStore(single.endpoints, compact_interval=0)
    await store.start()
    try:
        await store.create(P + "a", b"1")
        cache = WatchCache(store, P)
        await cache.start()
        try:
            for i in range(20):
                await store.create(f"/registry/elsewhere/{i}", b"x")
            target = await store.current_revision()
            t0 = time.monotonic()
            assert await cache.sync() >= target  # no event under P: only progress can tell
            assert time.monotonic() - t0 < 2
            # a write under P right before the sync is never missed
            for i in range(30):
                kv = await store.create(f"{P}n{i}", b"v")
                await cache.sync()
                assert cache.get(kv.key) == kv
        finally:
            await cache.stop()
        w = store.watch(P, await store.current_revision())
        await store.create("/registry/elsewhere/last", b"x")
        rev = await store.current_revision()
        await asyncio.wait_for(w.wait_progress(rev), 5)
        assert w.progress_revision >= rev
        await w.aclose()
    finally:
        await store.close()


async def test_abandoned_watch_is_collected(single: EtcdCluster) -> None:
    import gc

    store = EtcdStore(single.endpoints, compact_interval=0)
    await store.start()
    try:
        w = store.watch(P, 0)
        await store.create(P + "a", b"1")
        await asyncio.wait_for(w.__anext__(), 5)
        task = w._task
        del w
        gc.collect()
        await asyncio.sleep(0.2)
        assert task is not None and task.done()
        assert len(store._watches) == 0
    finally:
        await store.close()


async def test_tls_with_client_certificates(tmp_path: Path) -> None:
    from fixtures.etcd import make_tls

    from kybernetes.storage import open_store

    require_etcd()
    tls = make_tls(tmp_path / "pki")
    with EtcdCluster(tmp_path / "etcd-tls", size=3, tls=tls) as cl:
        store = open_store(cl.url, compact_interval=0)
        assert isinstance(store, EtcdStore) and store.tls
        await store.start()
        try:
            kv = await store.create(P + "a", b"over tls")
            w = store.watch(P, 0)
            assert (await asyncio.wait_for(w.__anext__(), 5)).kv == kv
            await w.aclose()
        finally:
            await store.close()
        # no client certificate: refused, and said so (not a hang)
        bare = EtcdStore(cl.endpoints, ca=tls.ca, compact_interval=0, request_timeout=1)
        with pytest.raises(StorageError):
            await bare.start()
        # a server certificate from another CA is not trusted
        other = make_tls(tmp_path / "other")
        wrong = EtcdStore(cl.endpoints, ca=other.ca, cert=tls.client_cert, key=tls.client_key,
                          compact_interval=0, request_timeout=1)
        with pytest.raises(StorageError):
            await wrong.start()
