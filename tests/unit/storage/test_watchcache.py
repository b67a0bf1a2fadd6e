"""WatchCache over a real store (the `store` fixture: every backend)."""

from __future__ import annotations

import asyncio
from typing import AsyncIterator

import pytest

from kybernetes.storage import (
    CompactedError,
    Event,
    StoreClosedError,
    WatchCache,
    WatchTooSlowError,
)
from kybernetes.storage import sqlite as sqlite_mod
from kybernetes.storage.interface import Store

P = "/registry/pods/"


async def take(it: AsyncIterator[Event], n: int, timeout: float = 5.0) -> list[Event]:
    out: list[Event] = []

    async def run() -> None:
        while len(out) < n:
            out.append(await it.__anext__())

    await asyncio.wait_for(run(), timeout)
    return out


@pytest.fixture
async def cache(store: Store):
    c = WatchCache(store, P, window=100)
    await c.start()
    yield c
    await c.stop()


async def test_initial_list_and_follow(store: Store) -> None:
    a = await store.create(P + "ns1/a", b"a")
    await store.create("/registry/podsx/a", b"not mine")
    c = WatchCache(store, P)
    await c.start()
    try:
        assert c.get(P + "ns1/a") == a
        assert c.revision == await store.current_revision()
        b = await store.create(P + "ns1/b", b"b")
        await c.wait_for(b.mod_revision)
        assert c.get(P + "ns1/b") == b
        a2 = await store.update(a.key, b"a2", a.mod_revision)
        await store.delete(b.key)
        await c.wait_for(await store.current_revision())
        res = c.list()
        assert res.items == [a2] and res.revision == await store.current_revision()
        assert c.get(b.key) is None and len(c) == 1
    finally:
        await c.stop()


async def test_list_pages_and_sub_prefix(store: Store, cache: WatchCache) -> None:
    kvs = []
    for ns in ("default", "kube-system"):
        for i in range(5):
            kvs.append(await store.create(f"{P}{ns}/p{i}", b"v"))
    await cache.sync()
    res = cache.list(limit=4)
    assert res.items == kvs[:4] and res.more and res.count == 10
    res = cache.list(start_after=kvs[3].key, limit=4)
    assert res.items == kvs[4:8] and res.more and res.count == 6
    res = cache.list(start_after=kvs[7].key, limit=4)
    assert res.items == kvs[8:] and not res.more
    res = cache.list(prefix=P + "kube-system/")
    assert res.items == kvs[5:] and res.count == 5
    res = cache.list(prefix=P + "kube-system/", limit=2, start_after=kvs[5].key)
    assert res.items == kvs[6:8] and res.more and res.count == 4
    assert cache.list(prefix=P + "nope/").items == []


async def test_sync_to_store_wide_revision(store: Store, cache: WatchCache) -> None:
    """Writes to other prefixes move the store revision; the cache must still catch up."""
    other = await store.create("/registry/services/x", b"v")
    rev = await cache.sync()
    assert rev >= other.mod_revision
    assert cache.revision >= other.mod_revision
    mine = await store.create(P + "a", b"v")
    more = await store.create("/registry/services/y", b"v")
    await cache.wait_for(more.mod_revision)
    assert cache.get(P + "a") == mine  # the event below the target was applied first
    assert cache.list().revision >= more.mod_revision


async def test_read_your_writes_under_load(store: Store, cache: WatchCache) -> None:
    async def writer(w: int) -> None:
        for i in range(30):
            kv = await store.create(f"{P}{w}/{i}", b"v")
            await store.create(f"/registry/noise/{w}/{i}", b"n")
            await cache.wait_for(kv.mod_revision)
            assert cache.get(kv.key) == kv

    await asyncio.gather(*(writer(w) for w in range(10)))
    await cache.sync()
    assert cache.list().count == 300


async def test_watch_from_window_then_live(store: Store, cache: WatchCache) -> None:
    start = cache.revision
    kvs = [await store.create(f"{P}{i:02d}", b"v") for i in range(10)]
    await cache.wait_for(kvs[-1].mod_revision)
    w = cache.watch(kvs[4].mod_revision)
    evs = await take(w, 5)
    assert [e.kv for e in evs] == kvs[5:]
    live = await store.create(P + "live", b"v")
    (ev,) = await take(w, 1)
    assert ev.kv == live
    await w.aclose()
    w = cache.watch(start)
    evs = await take(w, 11)
    assert [e.revision for e in evs] == [kv.mod_revision for kv in kvs] + [live.mod_revision]
    await w.aclose()


async def test_watch_sub_prefix_and_future_start(store: Store, cache: WatchCache) -> None:
    start = cache.revision
    a = await store.create(P + "ns1/a", b"v")
    await store.create(P + "ns2/b", b"v")
    c = await store.create(P + "ns1/c", b"v")
    w = cache.watch(start, prefix=P + "ns1/")
    assert [e.kv for e in await take(w, 2)] == [a, c]
    await w.aclose()
    # a start revision the cache has not reached yet: only later events come
    future = c.mod_revision + 2
    w = cache.watch(future)
    kvs = [await store.create(f"{P}f{i}", b"v") for i in range(4)]
    (ev,) = await take(w, 1)
    assert ev.revision == future + 1 and ev.kv == kvs[2]
    await w.aclose()


async def test_watch_older_than_window_is_gone(store: Store, cache: WatchCache) -> None:
    start = cache.revision
    for i in range(200):  # window=100
        await store.create(f"{P}{i:03d}", b"v")
    await cache.sync()
    assert cache.oldest_watchable > start
    with pytest.raises(CompactedError):
        await cache.watch(start).__anext__()
    # the oldest watchable point still works
    w = cache.watch(cache.oldest_watchable)
    (ev,) = await take(w, 1)
    assert ev.revision > cache.oldest_watchable
    await w.aclose()


async def test_slow_cache_watcher_is_ended(store: Store, cache: WatchCache) -> None:
    slow = cache.watch(cache.revision)
    fast = cache.watch(cache.revision)
    first = await store.create(P + "first", b"v")
    assert (await take(slow, 1))[0].kv == first
    for i in range(300):
        await store.create(f"{P}{i:03d}", b"v")
        assert len(await take(fast, 1)) == 1
    with pytest.raises(WatchTooSlowError):
        await take(slow, 1)
    await fast.aclose()


async def test_many_watchers_share_the_window(store: Store, cache: WatchCache) -> None:
    start = cache.revision
    watchers = [cache.watch(start) for _ in range(100)]
    kvs = [await store.create(f"{P}{i:02d}", b"v") for i in range(30)]
    results = await asyncio.gather(*(take(w, 30) for w in watchers))
    for evs in results:
        assert [e.kv for e in evs] == kvs
    for w in watchers:
        await w.aclose()


async def test_relist_when_store_watch_dies(store: Store, monkeypatch) -> None:
    if not hasattr(store, "_watchers"):
        pytest.skip("needs the SQLite store's watch queue bound")
    monkeypatch.setattr(sqlite_mod, "WATCH_QUEUE_LIMIT", 5)
    c = WatchCache(store, P, window=1000)
    await c.start()
    try:
        old = c.watch(c.revision)
        first = await store.create(P + "first", b"v")
        assert (await take(old, 1))[0].kv == first
        # one burst lands in one group commit: more than 5 events at once
        # overflow the cache's own store watch, which is then dropped
        kvs = await asyncio.gather(*(store.create(f"{P}{i:03d}", b"v") for i in range(50)))
        rev = await c.sync()
        assert rev >= max(kv.mod_revision for kv in kvs)
        assert c.relists >= 2
        assert [kv.key for kv in c.list().items] == sorted([first.key] + [kv.key for kv in kvs])
        with pytest.raises(WatchTooSlowError):
            await take(old, 50)
        # and it keeps following afterwards
        monkeypatch.setattr(sqlite_mod, "WATCH_QUEUE_LIMIT", 10000)
        later = await store.create(P + "later", b"v")
        await c.wait_for(later.mod_revision)
        assert c.get(later.key) == later
    finally:
        await c.stop()


async def test_wait_for_times_out_on_future_revision(store: Store, cache: WatchCache) -> None:
    target = await store.current_revision() + 5
    with pytest.raises(TimeoutError):
        await cache.wait_for(target, timeout=0.05)


async def test_stop_ends_watchers(store: Store) -> None:
    c = WatchCache(store, P)
    await c.start()
    w = c.watch(c.revision)
    pending = asyncio.ensure_future(w.__anext__())
    await asyncio.sleep(0)
    await c.stop()
    with pytest.raises((StopAsyncIteration, StoreClosedError)):
        await asyncio.wait_for(pending, 5)
    with pytest.raises(StoreClosedError):
        await c.wait_for(c.revision + 1)


async def test_store_close_ends_cache(store_factory) -> None:
    store = await store_factory()
    c = WatchCache(store, P)
    await c.start()
    w = c.watch(c.revision)
    pending = asyncio.ensure_future(w.__anext__())
    await store.close()
    with pytest.raises((StopAsyncIteration, StoreClosedError)):
        await asyncio.wait_for(pending, 5)
    await c.stop()


async def test_ten_thousand_objects(store: Store) -> None:
    # Bounded concurrency: 10,000 writes in flight at once can outlast a per-request
    # deadline on a busy machine without proving anything more.
    gate = asyncio.Semaphore(64)

    async def create(i: int):
        async with gate:
            return await store.create(f"{P}ns{i % 10}/pod-{i:05d}", b"x" * 64)

    kvs = await asyncio.gather(*(create(i) for i in range(10000)))
    c = WatchCache(store, P)
    await c.start()
    try:
        assert len(c) == 10000
        pages, after = 0, None
        while True:
            res = c.list(start_after=after, limit=500)
            pages += 1
            if not res.more:
                break
            after = res.items[-1].key
        assert pages == 20
        assert c.list(prefix=P + "ns3/").count == 1000
        # churn keeps the sorted index right
        for kv in kvs[:200]:
            await store.delete(kv.key)
        new = await store.create(P + "aaa-first", b"v")
        await c.wait_for(new.mod_revision)
        res = c.list(limit=1)
        assert res.items == [new] and res.count == 9801
    finally:
        await c.stop()


async def test_watch_survives_cancelled_next(store: Store, cache: WatchCache) -> None:
    """The API server waits for an event with a timeout (to send bookmarks)."""
    w = cache.watch(cache.revision)
    for _ in range(3):
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(w.__anext__(), 0.01)
    kv = await store.create(P + "a", b"v")
    (ev,) = await take(w, 1)
    assert ev.kv == kv
    await w.aclose()
    with pytest.raises(StopAsyncIteration):
        await w.__anext__()


async def test_bookmark_never_claims_events_the_watch_has_not_returned(cache: WatchCache, store: Store) -> None:
    from kybernetes.apiserver.watch import bookmark_revision

    start = cache.revision
    w = cache.watch(start)
    assert not w.behind() and bookmark_revision(w, cache, start) == cache.revision
    a = await store.create(P + "ns/a", b"a")
    b = await store.create(P + "ns/b", b"b")
    await cache.wait_for(b.mod_revision)
    # both events are in the cache, none returned: a bookmark at the cache's revision
    # would make a client that reconnects from it skip them
    assert w.behind() and bookmark_revision(w, cache, start) == start
    (ev,) = await take(w, 1)
    assert ev.revision == a.mod_revision
    assert w.behind() and bookmark_revision(w, cache, ev.revision) == a.mod_revision
    (ev,) = await take(w, 1)
    assert not w.behind() and bookmark_revision(w, cache, ev.revision) == cache.revision


async def test_a_wait_timing_out_as_an_event_lands_leaves_the_event_unreturned(cache: WatchCache, store: Store) -> None:
    # the server's bookmark tick: wait_for(__anext__) times out; an event applied while
    # that wait is cancelled stays pending on the cursor (and behind() says so)
    from kybernetes.apiserver.watch import bookmark_revision

    start = cache.revision
    w = cache.watch(start)
    it = w.__aiter__()
    task = asyncio.ensure_future(it.__anext__())
    await asyncio.sleep(0)  # parked, waiting for a change
    a = await store.create(P + "ns/x", b"x")
    await cache.wait_for(a.mod_revision)
    task.cancel()  # the timeout's cancellation (usually) wins over the wake-up
    try:
        sent = [await task]
    except asyncio.CancelledError:
        sent = []
    assert cache.revision >= a.mod_revision
    if sent:  # the backend handed the event over before the cancellation
        assert not w.behind() and bookmark_revision(w, cache, sent[0].revision) == cache.revision
        return
    assert w.behind() and bookmark_revision(w, cache, start) == start
    (ev,) = await take(w, 1)
    assert ev.revision == a.mod_revision
