"""The Store contract, tested only through kybernetes.storage.interface.

Parametrised over every backend by the `store`/`store_factory` fixtures
(conftest.py); nothing here may depend on a particular backend."""

from __future__ import annotations

import asyncio
import random
from typing import AsyncIterator, Optional

import pytest

from kybernetes.storage.interface import (
    CompactedError,
    ConflictError,
    Event,
    FutureRevisionError,
    KeyExistsError,
    KeyNotFoundError,
    KeyValue,
    StorageError,
    Store,
)

P = "/registry/things/"


async def take(it: AsyncIterator[Event], n: int, timeout: float = 5.0) -> list[Event]:
    """The next `n` events of `it` (fails after `timeout` seconds)."""
    out: list[Event] = []

    async def run() -> None:
        while len(out) < n:
            out.append(await it.__anext__())

    await asyncio.wait_for(run(), timeout)
    return out


async def take_until(it: AsyncIterator[Event], key: str, timeout: float = 5.0) -> list[Event]:
    """Events of `it` up to and including the first one on `key`."""
    out: list[Event] = []

    async def run() -> None:
        while True:
            ev = await it.__anext__()
            out.append(ev)
            if ev.kv.key == key:
                return

    await asyncio.wait_for(run(), timeout)
    return out


async def until(cond, timeout: float = 5.0) -> None:
    """Yield to other tasks until `cond()` (an awaitable-returning or plain callable) is true."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        r = cond()
        if asyncio.iscoroutine(r):
            r = await r
        if r:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError("condition not met in time")
        await asyncio.sleep(0)


async def aclose(it: AsyncIterator[Event]) -> None:
    close = getattr(it, "aclose", None)
    if close is not None:
        await close()


# ---- basic CRUD ------------------------------------------------------------------------------


async def test_create_and_get(store: Store) -> None:
    assert await store.get(P + "a") is None
    kv = await store.create(P + "a", b"one")
    assert kv.key == P + "a" and kv.value == b"one"
    assert kv.mod_revision > 0 and kv.create_revision == kv.mod_revision
    assert await store.get(P + "a") == kv
    assert await store.current_revision() == kv.mod_revision


async def test_create_existing_raises_with_current(store: Store) -> None:
    kv = await store.create(P + "a", b"one")
    with pytest.raises(KeyExistsError) as ei:
        await store.create(P + "a", b"two")
    assert ei.value.key == P + "a"
    assert ei.value.current is None or ei.value.current == kv
    assert (await store.get(P + "a")).value == b"one"


async def test_update_compare_and_swap(store: Store) -> None:
    kv1 = await store.create(P + "a", b"one")
    kv2 = await store.update(P + "a", b"two", kv1.mod_revision)
    assert kv2.value == b"two"
    assert kv2.mod_revision > kv1.mod_revision
    assert kv2.create_revision == kv1.create_revision
    with pytest.raises(ConflictError) as ei:
        await store.update(P + "a", b"three", kv1.mod_revision)
    assert ei.value.current == kv2  # the caller can retry from the current value
    assert await store.get(P + "a") == kv2


async def test_update_missing_or_deleted_is_not_found(store: Store) -> None:
    with pytest.raises(KeyNotFoundError):
        await store.update(P + "nope", b"x", 1)
    kv = await store.create(P + "a", b"one")
    await store.delete(P + "a")
    with pytest.raises(KeyNotFoundError):
        await store.update(P + "a", b"x", kv.mod_revision)


async def test_delete_returns_last_value_at_delete_revision(store: Store) -> None:
    kv1 = await store.create(P + "a", b"one")
    kv2 = await store.update(P + "a", b"two", kv1.mod_revision)
    gone = await store.delete(P + "a")
    assert gone.key == P + "a" and gone.value == b"two"
    assert gone.mod_revision > kv2.mod_revision
    assert gone.mod_revision == await store.current_revision()
    assert gone.create_revision == kv1.create_revision
    assert await store.get(P + "a") is None
    with pytest.raises(KeyNotFoundError):
        await store.delete(P + "a")


async def test_delete_with_precondition(store: Store) -> None:
    kv1 = await store.create(P + "a", b"one")
    kv2 = await store.update(P + "a", b"two", kv1.mod_revision)
    with pytest.raises(ConflictError) as ei:
        await store.delete(P + "a", kv1.mod_revision)
    assert ei.value.current == kv2
    assert await store.get(P + "a") == kv2
    gone = await store.delete(P + "a", kv2.mod_revision)
    assert gone.value == b"two"


async def test_recreate_after_delete_gets_new_create_revision(store: Store) -> None:
    kv1 = await store.create(P + "a", b"one")
    gone = await store.delete(P + "a")
    kv2 = await store.create(P + "a", b"again")
    assert kv2.create_revision == kv2.mod_revision > gone.mod_revision
    assert await store.get(P + "a") == kv2
    assert await store.get(P + "a", revision=kv1.mod_revision) == kv1
    assert await store.get(P + "a", revision=gone.mod_revision) is None


async def test_revision_is_global_and_increasing(store: Store) -> None:
    revs = []
    for i in range(5):
        revs.append((await store.create(f"{P}k{i}", b"v")).mod_revision)
        revs.append((await store.create(f"/registry/other/k{i}", b"v")).mod_revision)
    assert revs == sorted(revs) and len(set(revs)) == len(revs)
    assert await store.current_revision() == revs[-1]


async def test_empty_and_binary_values(store: Store) -> None:
    await store.create(P + "empty", b"")
    blob = bytes(range(256)) * 10
    await store.create(P + "blob", blob)
    assert (await store.get(P + "empty")).value == b""
    assert (await store.get(P + "blob")).value == blob


async def test_get_at_revision(store: Store) -> None:
    kv1 = await store.create(P + "a", b"one")
    kv2 = await store.update(P + "a", b"two", kv1.mod_revision)
    assert await store.get(P + "a", revision=kv1.mod_revision) == kv1
    assert await store.get(P + "a", revision=kv2.mod_revision) == kv2
    with pytest.raises(FutureRevisionError):
        await store.get(P + "a", revision=kv2.mod_revision + 100)


# ---- list --------------------------------------------------------------------------------------


async def test_list_key_order_and_count(store: Store) -> None:
    names = [f"{P}{n}" for n in ("b", "a", "c/x", "c", "aa")]
    for n in names:
        await store.create(n, n.encode())
    res = await store.list(P)
    assert [kv.key for kv in res.items] == sorted(names)
    assert [kv.value for kv in res.items] == [n.encode() for n in sorted(names)]
    assert res.more is False
    assert res.revision == await store.current_revision()
    assert res.count == len(names)


async def test_prefix_isolation(store: Store) -> None:
    await store.create("/registry/pods/default/a", b"1")
    await store.create("/registry/podsx/default/a", b"2")
    await store.create("/registry/pods", b"3")
    await store.create("/registry/pod", b"4")
    res = await store.list("/registry/pods/")
    assert [kv.key for kv in res.items] == ["/registry/pods/default/a"]
    # LIKE wildcards and the escape character must match only themselves.
    for k in ("/registry/a%b/x", "/registry/a_b/x", "/registry/axb/x", "/registry/a\\b/x"):
        await store.create(k, b"w")
    assert [kv.key for kv in (await store.list("/registry/a%b/")).items] == ["/registry/a%b/x"]
    assert [kv.key for kv in (await store.list("/registry/a_b/")).items] == ["/registry/a_b/x"]
    assert [kv.key for kv in (await store.list("/registry/a\\b/")).items] == ["/registry/a\\b/x"]


async def test_list_skips_deleted(store: Store) -> None:
    for n in "abc":
        await store.create(P + n, b"v")
    await store.delete(P + "b")
    res = await store.list(P)
    assert [kv.key for kv in res.items] == [P + "a", P + "c"]


async def test_list_at_older_revision(store: Store) -> None:
    a1 = await store.create(P + "a", b"a1")
    b1 = await store.create(P + "b", b"b1")
    r1 = await store.current_revision()
    a2 = await store.update(P + "a", b"a2", a1.mod_revision)
    await store.delete(P + "b")
    c1 = await store.create(P + "c", b"c1")
    old = await store.list(P, revision=r1)
    assert old.items == [a1, b1] and old.revision == r1
    now = await store.list(P)
    assert now.items == [a2, c1]
    with pytest.raises(FutureRevisionError):
        await store.list(P, revision=c1.mod_revision + 1)


async def test_list_limit_more_count(store: Store) -> None:
    keys = [f"{P}{i:03d}" for i in range(10)]
    for k in keys:
        await store.create(k, b"v")
    res = await store.list(P, limit=4)
    assert [kv.key for kv in res.items] == keys[:4]
    assert res.more is True and res.count == 10
    res = await store.list(P, limit=4, start_after=keys[3])
    assert [kv.key for kv in res.items] == keys[4:8]
    assert res.more is True and res.count == 6  # remaining, including this page
    res = await store.list(P, limit=2, start_after=keys[7])
    assert [kv.key for kv in res.items] == keys[8:]
    assert res.more is False
    res = await store.list(P, limit=10)
    assert len(res.items) == 10 and res.more is False
    assert (await store.list(P, start_after=keys[-1])).items == []


async def test_pagination_is_consistent_at_fixed_revision_while_writing(store: Store) -> None:
    keys = [f"{P}{i:03d}" for i in range(60)]
    for k in keys:
        await store.create(k, k.encode())
    snapshot = await store.list(P)
    rev = snapshot.revision
    stop = asyncio.Event()

    async def churn() -> None:
        rnd = random.Random(7)
        n = 0
        while not stop.is_set():
            k = rnd.choice(keys)
            cur = await store.get(k)
            try:
                if cur is None:
                    await store.create(k, b"re")
                elif rnd.random() < 0.3:
                    await store.delete(k)
                else:
                    await store.update(k, b"changed", cur.mod_revision)
            except (ConflictError, KeyNotFoundError, KeyExistsError):
                pass
            await store.create(f"{P}new{n:04d}", b"n")
            n += 1

    task = asyncio.create_task(churn())
    try:
        got: list[KeyValue] = []
        start_after: Optional[str] = None
        pages = 0
        while True:
            # Let the writer get ahead between pages.
            target = await store.current_revision() + 3

            async def ahead() -> bool:
                return await store.current_revision() >= target

            await until(ahead)
            page = await store.list(P, revision=rev, limit=7, start_after=start_after)
            assert page.revision == rev
            got.extend(page.items)
            pages += 1
            if not page.more:
                break
            start_after = page.items[-1].key
        assert got == snapshot.items
        assert pages == 9
    finally:
        stop.set()
        await task


# ---- concurrency ----------------------------------------------------------------------------


async def test_concurrent_cas_increments_on_one_key(store: Store) -> None:
    key = P + "counter"
    await store.create(key, b"0")
    attempts_per_task = 5
    successes = 0
    conflicts = 0

    async def worker() -> None:
        nonlocal successes, conflicts
        for _ in range(attempts_per_task):
            cur = await store.get(key)
            try:
                await store.update(key, str(int(cur.value) + 1).encode(), cur.mod_revision)
                successes += 1
            except ConflictError:
                conflicts += 1

    await asyncio.gather(*(worker() for _ in range(50)))
    final = await store.get(key)
    assert successes + conflicts == 50 * attempts_per_task
    assert successes >= 1
    assert int(final.value) == successes  # no lost and no double increments


async def test_concurrent_cas_increments_with_retry(store: Store) -> None:
    key = P + "counter"
    await store.create(key, b"0")

    async def increment() -> None:
        while True:
            cur = await store.get(key)
            try:
                await store.update(key, str(int(cur.value) + 1).encode(), cur.mod_revision)
                return
            except ConflictError as e:
                assert e.current is not None and e.current.mod_revision > cur.mod_revision

    await asyncio.gather(*(increment() for _ in range(50)))
    assert int((await store.get(key)).value) == 50


async def test_concurrent_creates_of_one_key_exactly_one_wins(store: Store) -> None:
    results = await asyncio.gather(*(store.create(P + "x", str(i).encode()) for i in range(30)), return_exceptions=True)
    wins = [r for r in results if isinstance(r, KeyValue)]
    assert len(wins) == 1
    assert all(isinstance(r, KeyExistsError) for r in results if not isinstance(r, KeyValue))
    assert await store.get(P + "x") == wins[0]


async def test_many_writers_on_different_keys(store: Store) -> None:
    async def writer(w: int) -> list[int]:
        revs = []
        for i in range(40):
            revs.append((await store.create(f"{P}w{w:02d}/{i:03d}", f"{w}:{i}".encode())).mod_revision)
        return revs

    start = await store.current_revision()
    all_revs = [r for revs in await asyncio.gather(*(writer(w) for w in range(25))) for r in revs]
    assert len(set(all_revs)) == 1000
    assert sorted(all_revs) == list(range(start + 1, start + 1001))
    res = await store.list(P)
    assert res.count == 1000 and len(res.items) == 1000


# ---- watch ------------------------------------------------------------------------------------


async def test_watch_from_revision_gets_exactly_later_events(store: Store) -> None:
    a1 = await store.create(P + "a", b"a1")
    r0 = a1.mod_revision
    a2 = await store.update(P + "a", b"a2", a1.mod_revision)
    b1 = await store.create(P + "b", b"b1")
    await store.create("/registry/elsewhere/x", b"x")
    a3 = await store.delete(P + "a")
    w = store.watch(P, r0)
    try:
        evs = await take(w, 3)
        assert [(e.type, e.kv.key, e.revision) for e in evs] == [
            ("PUT", P + "a", a2.mod_revision),
            ("PUT", P + "b", b1.mod_revision),
            ("DELETE", P + "a", a3.mod_revision),
        ]
        assert evs[0].kv == a2 and evs[0].prev == a1 and not evs[0].created
        assert evs[1].kv == b1 and evs[1].prev is None and evs[1].created
        assert evs[2].kv.value == b"a2" and evs[2].prev == a2 and not evs[2].created
        # then live events, in order
        c1 = await store.create(P + "c", b"c1")
        (ev,) = await take(w, 1)
        assert ev.kv == c1 and ev.created
    finally:
        await aclose(w)


async def test_watch_from_zero_replays_all_history(store: Store) -> None:
    kvs = [await store.create(f"{P}{i}", b"v") for i in range(5)]
    w = store.watch(P, 0)
    try:
        evs = await take(w, 5)
        assert [e.kv for e in evs] == kvs
    finally:
        await aclose(w)


async def test_watch_resume_has_no_gaps_or_duplicates(store: Store) -> None:
    revs = [(await store.create(f"{P}{i:02d}", b"v")).mod_revision for i in range(10)]
    w = store.watch(P, 0)
    first = await take(w, 4)
    await aclose(w)
    last = first[-1].revision
    revs += [(await store.create(f"{P}{i:02d}", b"v")).mod_revision for i in range(10, 15)]
    w = store.watch(P, last)
    try:
        rest = await take(w, len(revs) - 4)
        seen = [e.revision for e in first + rest]
        assert seen == revs
    finally:
        await aclose(w)


async def test_watch_while_writing_has_no_gaps_duplicates_or_reordering(store: Store) -> None:
    """History replay and live events meet without a gap while writers run."""
    written: list[int] = []
    for i in range(50):
        written.append((await store.create(f"{P}pre{i:03d}", b"v")).mod_revision)
    stop = asyncio.Event()

    async def writer(w: int) -> None:
        i = 0
        while not stop.is_set():
            written.append((await store.create(f"{P}live{w}-{i:04d}", b"v")).mod_revision)
            await store.create(f"/registry/noise/{w}-{i:04d}", b"n")
            i += 1

    tasks = [asyncio.create_task(writer(w)) for w in range(4)]
    try:
        await until(lambda: len(written) >= 100)
        w = store.watch(P, 0)
        seen = await take(w, 200)
        stop.set()
        await asyncio.gather(*tasks)
        end = await store.create(P + "zz-end", b"")
        seen += await take_until(w, P + "zz-end")
        await aclose(w)
    finally:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
    revs = [e.revision for e in seen]
    assert revs == sorted(written) + [end.mod_revision]


async def test_watch_fan_out_to_several_watchers(store: Store) -> None:
    start = await store.current_revision()
    watchers = [store.watch(P, start) for _ in range(5)]
    other = store.watch("/registry/other/", start)
    try:
        kvs = []
        for i in range(20):
            kvs.append(await store.create(f"{P}{i:02d}", b"v"))
            await store.create(f"/registry/other/{i:02d}", b"o")
        results = await asyncio.gather(*(take(w, 20) for w in watchers))
        for evs in results:
            assert [e.kv for e in evs] == kvs
        oevs = await take(other, 20)
        assert all(e.kv.key.startswith("/registry/other/") for e in oevs)
    finally:
        for w in watchers + [other]:
            await aclose(w)


async def test_watch_prefix_isolation(store: Store) -> None:
    start = await store.current_revision()
    w = store.watch("/registry/pods/", start)
    try:
        await store.create("/registry/podsx/a", b"no")
        await store.create("/registry/pods", b"no")
        kv = await store.create("/registry/pods/a", b"yes")
        (ev,) = await take(w, 1)
        assert ev.kv == kv
    finally:
        await aclose(w)


async def test_close_ends_watches(store_factory) -> None:
    store = await store_factory()
    await store.create(P + "a", b"v")
    w = store.watch(P, 0)
    await take(w, 1)
    pending = asyncio.ensure_future(w.__anext__())
    await asyncio.sleep(0)
    await store.close()
    with pytest.raises((StopAsyncIteration, StorageError)):
        await asyncio.wait_for(pending, 5)


# ---- compaction ------------------------------------------------------------------------------


async def test_compaction(store: Store) -> None:
    a = await store.create(P + "a", b"0")
    old_rev = a.mod_revision
    for i in range(1, 6):
        a = await store.update(P + "a", str(i).encode(), a.mod_revision)
    await store.create(P + "b", b"b")
    await store.delete(P + "b")
    c = await store.create(P + "c", b"c")
    mid = await store.current_revision()
    d = await store.create(P + "d", b"d")
    await store.compact(mid)
    assert await store.compacted_revision() == mid
    with pytest.raises(CompactedError) as ei:
        await store.list(P, revision=old_rev)
    assert ei.value.compacted == mid
    with pytest.raises(CompactedError):
        await store.get(P + "a", revision=old_rev)
    w = store.watch(P, old_rev)
    with pytest.raises(CompactedError):
        await take(w, 1)
    # live values survive, at the compaction revision and now
    assert (await store.list(P, revision=mid)).items == [a, c]
    assert (await store.list(P)).items == [a, c, d]
    assert await store.get(P + "a") == a
    # watching from the compaction point still works
    w = store.watch(P, mid)
    try:
        (ev,) = await take(w, 1)
        assert ev.kv == d
    finally:
        await aclose(w)
    # updates after compaction keep working
    a2 = await store.update(P + "a", b"later", a.mod_revision)
    assert a2.create_revision == a.create_revision


async def test_compaction_keeps_values_as_of_compaction_revision(store: Store) -> None:
    x1 = await store.create(P + "x", b"1")
    x2 = await store.update(P + "x", b"2", x1.mod_revision)
    for i in range(3):
        await store.create(f"/registry/other/{i}", b"o")
    target = await store.current_revision()
    x3 = await store.update(P + "x", b"3", x2.mod_revision)
    await store.compact(target)
    assert (await store.list(P, revision=target)).items == [x2]
    assert await store.get(P + "x", revision=target) == x2
    assert await store.get(P + "x") == x3
    w = store.watch(P, target)
    try:
        (ev,) = await take(w, 1)
        assert ev.kv == x3 and ev.prev == x2
    finally:
        await aclose(w)


async def test_recreated_key_survives_compaction(store: Store) -> None:
    k1 = await store.create(P + "k", b"first")
    await store.delete(P + "k", k1.mod_revision)
    k2 = await store.create(P + "k", b"second")
    gone = await store.create(P + "gone", b"x")
    await store.delete(P + "gone", gone.mod_revision)
    await store.compact(await store.current_revision())
    assert (await store.list(P)).items == [k2]
    assert await store.get(P + "gone") is None
    # a deleted key can be created again after its tombstone was compacted
    g2 = await store.create(P + "gone", b"y")
    assert g2.create_revision == g2.mod_revision


# ---- restart ----------------------------------------------------------------------------------


async def test_restart_persistence(store_factory) -> None:
    s1 = await store_factory()
    a = await s1.create(P + "a", b"1")
    a = await s1.update(P + "a", b"2", a.mod_revision)
    b = await s1.create(P + "b", b"b")
    await s1.delete(P + "b", b.mod_revision)
    c = await s1.create(P + "c", b"c")
    await s1.compact(c.mod_revision - 1)
    rev = await s1.current_revision()
    await s1.close()

    s2 = await store_factory()
    assert await s2.current_revision() == rev
    assert await s2.compacted_revision() == c.mod_revision - 1
    assert (await s2.list(P)).items == [a, c]
    with pytest.raises(CompactedError):
        await s2.list(P, revision=a.mod_revision - 1)
    d = await s2.create(P + "d", b"d")
    assert d.mod_revision == rev + 1
    w = s2.watch(P, c.mod_revision - 1)
    try:
        evs = await take(w, 2)
        assert [e.kv for e in evs] == [c, d]
    finally:
        await aclose(w)


async def test_compact_to_future_revision_is_refused(store: Store) -> None:
    kv = await store.create(P + "a", b"v")
    with pytest.raises(FutureRevisionError):
        await store.compact(kv.mod_revision + 10)
    assert await store.get(P + "a") == kv


async def test_empty_prefix_lists_and_watches_everything(store: Store) -> None:
    a = await store.create("/x/a", b"1")
    b = await store.create("/y/b", b"2")
    assert (await store.list("")).items == [a, b]
    w = store.watch("", 0)
    try:
        assert [e.kv for e in await take(w, 2)] == [a, b]
    finally:
        await aclose(w)
