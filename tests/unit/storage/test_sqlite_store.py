"""SQLite-specific behaviour beyond the shared Store contract."""

from __future__ import annotations

import asyncio
import gc
import sqlite3
from pathlib import Path

import pytest

from kybernetes.storage import (
    CompactedError,
    SQLiteStore,
    StoreClosedError,
    WatchTooSlowError,
    open_store,
    prefix_end,
)
from kybernetes.storage import sqlite as sqlite_mod

P = "/registry/things/"


@pytest.fixture
async def sq(tmp_path: Path):
    s = SQLiteStore(str(tmp_path / "s.db"), compact_interval=0)
    await s.start()
    yield s
    await s.close()


async def until(cond, timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not cond():
        if loop.time() > deadline:
            raise TimeoutError("condition not met in time")
        await asyncio.sleep(0.001)


def test_prefix_end() -> None:
    assert prefix_end("/a/") == "/a0"
    assert prefix_end("") is None
    assert prefix_end("a\U0010ffff") == "b"
    assert prefix_end("\U0010ffff") is None
    assert prefix_end("a\ud7ff") == "a\ue000"


def test_open_store_urls(tmp_path: Path) -> None:
    s = open_store(str(tmp_path / "a.db"))
    assert isinstance(s, SQLiteStore) and s.path == str(tmp_path / "a.db")
    s = open_store(f"sqlite://{tmp_path}/b.db")
    assert isinstance(s, SQLiteStore) and s.path == f"{tmp_path}/b.db"
    s = open_store("sqlite://rel/c.db", compact_keep=5)
    assert s.path == "rel/c.db" and s.compact_keep == 5
    from kybernetes.storage.etcd import EtcdStore

    assert isinstance(open_store("etcd://127.0.0.1:2379"), EtcdStore)
    with pytest.raises(ValueError):
        open_store("mysql://localhost/db")
    with pytest.raises(ValueError):
        open_store("sqlite://")
    with pytest.raises(ValueError):
        open_store(":memory:")


async def test_wal_mode_and_schema(sq: SQLiteStore) -> None:
    await sq.create(P + "a", b"v")
    conn = sqlite3.connect(sq.path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        idx = [r[1] for r in conn.execute("PRAGMA index_list(kv)")]
        assert "kv_name_id" in idx
    finally:
        conn.close()


async def test_group_commit_batches_concurrent_writes(sq: SQLiteStore) -> None:
    before = dict(sq.stats)
    await asyncio.gather(*(sq.create(f"{P}{i:04d}", b"v") for i in range(500)))
    commits = sq.stats["commits"] - before["commits"]
    assert sq.stats["ops"] - before["ops"] == 500
    assert commits < 100  # many ops per fsync, not one each


async def test_cas_failure_does_not_spoil_its_batch(sq: SQLiteStore) -> None:
    kv = await sq.create(P + "a", b"v")
    results = await asyncio.gather(
        sq.create(P + "b", b"v"),
        sq.update(P + "a", b"x", kv.mod_revision + 99),
        sq.create(P + "a", b"dup"),
        sq.create(P + "c", b"v"),
        return_exceptions=True,
    )
    assert [type(r).__name__ for r in results] == ["KeyValue", "ConflictError", "KeyExistsError", "KeyValue"]
    assert results[3].mod_revision == results[0].mod_revision + 1  # failed ops use no revision
    assert [k.key for k in (await sq.list(P)).items] == [P + "a", P + "b", P + "c"]


async def test_slow_watcher_is_dropped_without_blocking_writers(sq: SQLiteStore, monkeypatch) -> None:
    monkeypatch.setattr(sqlite_mod, "WATCH_QUEUE_LIMIT", 50)
    start = await sq.current_revision()
    slow = sq.watch(P, start)
    fast = sq.watch(P, start)
    first = await asyncio.wait_for(asyncio.gather(sq.create(P + "first", b"v"), slow.__anext__()), 5)
    assert first[1].kv.key == P + "first"
    n = 0
    got = []
    for i in range(120):
        await sq.create(f"{P}{i:04d}", b"v")  # never blocks on the slow watcher
        got.append(await asyncio.wait_for(fast.__anext__(), 5))
        n += 1
    assert len(got) == 120 and got[0].kv.key == P + "first"
    with pytest.raises(WatchTooSlowError) as ei:
        await asyncio.wait_for(slow.__anext__(), 5)
    assert isinstance(ei.value, CompactedError)  # the API maps it to 410 like compaction
    with pytest.raises(StopAsyncIteration):
        await slow.__anext__()
    await fast.aclose()


async def test_compaction_deletes_history_rows(sq: SQLiteStore, monkeypatch) -> None:
    monkeypatch.setattr(sqlite_mod, "COMPACT_CHUNK", 7)  # many chunks
    kv = await sq.create(P + "a", b"0")
    for i in range(50):
        kv = await sq.update(P + "a", str(i).encode(), kv.mod_revision)
    for i in range(10):
        t = await sq.create(f"{P}tmp{i}", b"t")
        await sq.delete(t.key)
    live = await sq.create(P + "z", b"z")
    # compaction and writes interleave
    writes = [sq.create(f"{P}w{i:03d}", b"w") for i in range(30)]
    await asyncio.gather(sq.compact(await sq.current_revision()), *writes)
    conn = sqlite3.connect(sq.path)
    try:
        rows = conn.execute("SELECT name FROM kv WHERE id < ? ORDER BY id", (live.mod_revision,)).fetchall()
    finally:
        conn.close()
    assert [r[0] for r in rows] == [P + "a"]  # only the live value of "a" is left below
    res = await sq.list(P)
    assert res.items[0] == kv and res.count == 32


async def test_periodic_compaction(tmp_path: Path) -> None:
    s = SQLiteStore(str(tmp_path / "p.db"), compact_interval=0.02, compact_keep=10)
    await s.start()
    try:
        kv = await s.create(P + "a", b"0")
        for i in range(40):
            kv = await s.update(P + "a", str(i).encode(), kv.mod_revision)
        rev = await s.current_revision()
        # the timer compacts to (current - keep) once writes have stopped
        await until(lambda: s._compacted >= rev - 10)
        assert await s.compacted_revision() == rev - 10
        assert await s.get(P + "a") == kv
    finally:
        await s.close()


async def test_writes_after_close_fail_cleanly(tmp_path: Path) -> None:
    s = SQLiteStore(str(tmp_path / "c.db"), compact_interval=0)
    await s.start()
    pending = [asyncio.ensure_future(s.create(f"{P}{i}", b"v")) for i in range(20)]
    await asyncio.sleep(0)  # one loop pass: every task runs up to its queued write
    await s.close()
    results = await asyncio.gather(*pending, return_exceptions=True)
    assert all(not isinstance(r, BaseException) for r in results)  # queued before close: done
    with pytest.raises(StoreClosedError):
        await s.create(P + "late", b"v")
    with pytest.raises(StoreClosedError):
        await s.get(P + "late")
    with pytest.raises(StoreClosedError):
        await s.watch(P, 0).__anext__()


async def test_abandoned_watch_is_unsubscribed(sq: SQLiteStore) -> None:
    w = sq.watch(P, 0)
    kv = await sq.create(P + "a", b"v")
    assert (await asyncio.wait_for(w.__anext__(), 5)).kv == kv
    assert sq._watchers
    del w
    gc.collect()
    await sq.create(P + "b", b"v")
    assert not sq._watchers


async def test_watch_progress_moves_with_other_prefixes(sq: SQLiteStore) -> None:
    w = sq.watch(P, 0)
    kv = await sq.create(P + "a", b"v")
    assert (await asyncio.wait_for(w.__anext__(), 5)).kv == kv
    other = await sq.create("/registry/other/x", b"v")
    # nothing under P is pending, so progress reaches the store-wide revision
    await asyncio.wait_for(w.wait_progress(other.mod_revision), 5)
    assert w.progress_revision >= other.mod_revision
    mine = await sq.create(P + "b", b"v")
    assert w.progress_revision < mine.mod_revision  # an event under P is still unread
    assert (await asyncio.wait_for(w.__anext__(), 5)).kv == mine
    assert w.progress_revision >= mine.mod_revision
    await w.aclose()


async def test_reopen_after_unclean_close_keeps_revisions(tmp_path: Path) -> None:
    path = str(tmp_path / "r.db")
    s = SQLiteStore(path, compact_interval=0)
    await s.start()
    kv = await s.create(P + "a", b"v")
    await s.delete(P + "a")  # the newest row is a tombstone; compaction removes it
    await s.compact(await s.current_revision())
    rev = await s.current_revision()
    await s.close()
    s = SQLiteStore(path, compact_interval=0)
    await s.start()
    try:
        assert await s.current_revision() == rev  # revisions are never reused
        kv2 = await s.create(P + "a", b"w")
        assert kv2.mod_revision == rev + 1 > kv.mod_revision
    finally:
        await s.close()


async def test_store_watch_survives_cancelled_next(sq: SQLiteStore) -> None:
    w = sq.watch(P, await sq.current_revision())
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(w.__anext__(), 0.01)
    kv = await sq.create(P + "a", b"v")
    assert (await asyncio.wait_for(w.__anext__(), 5)).kv == kv
    await w.aclose()


async def test_failed_group_commit_fails_its_callers_only(sq: SQLiteStore, monkeypatch) -> None:
    kv = await sq.create(P + "a", b"v")
    real_apply = sq._apply

    def broken(conn, op, rev):
        if op.key == P + "boom":
            raise sqlite3.OperationalError("disk I/O error (simulated)")
        return real_apply(conn, op, rev)

    monkeypatch.setattr(sq, "_apply", broken)
    with pytest.raises(Exception) as ei:
        await sq.create(P + "boom", b"v")
    assert "simulated" in str(ei.value)
    assert await sq.current_revision() == kv.mod_revision  # nothing half-written
    kv2 = await sq.create(P + "b", b"v")  # the writer lives on
    assert kv2.mod_revision == kv.mod_revision + 1
    with pytest.raises(TypeError):
        await sq.create(b"/bytes/key", b"v")  # type: ignore[arg-type]
