"""SQLite backend of the Store contract: a kine-like revision log.

Every change appends one row to table `kv`; the row id *is* the revision.  A key's
state at revision R is its newest row with id <= R (a `deleted` row means absent).

Writes go through one dedicated writer thread that owns the only write
connection and commits queued requests in groups (group commit): with
synchronous=FULL each commit costs an fsync, so batching is what makes durable
writes fast.  Compare-and-swap checks run inside that thread against the newest
row of the key, so they are atomic without any SQL-level locking games.

Reads run on per-thread reader connections in a small thread pool; each read is
one WAL snapshot, and the compaction point and current revision are read inside
that snapshot so a concurrent compaction can never make a read silently wrong.

Watches are fanned out in process: after each commit the writer thread hands the
committed events to the event loop, which appends them to subscribers' buffers.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
import queue
import sqlite3
import threading
import weakref
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Optional

from .errors import StoreClosedError, WatchTooSlowError
from .interface import (
    CompactedError,
    ConflictError,
    Event,
    FutureRevisionError,
    KeyExistsError,
    KeyNotFoundError,
    KeyValue,
    ListResult,
    StorageError,
    Store,
)

log = logging.getLogger(__name__)

MAX_BATCH = 128  # ops per group-commit transaction
WATCH_QUEUE_LIMIT = 10000  # undelivered events a watcher may hold before it is dropped
REPLAY_PAGE = 1000  # history rows read per query while a watch catches up
COMPACT_CHUNK = 2000  # revisions examined per compaction transaction
READER_THREADS = 4

_SCHEMA = """
CREATE TABLE IF NOT EXISTS kv (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    created INTEGER NOT NULL,
    deleted INTEGER NOT NULL,
    create_revision INTEGER NOT NULL,
    prev_revision INTEGER NOT NULL,
    value BLOB NOT NULL,
    old_value BLOB
);
CREATE INDEX IF NOT EXISTS kv_name_id ON kv (name, id);
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v INTEGER NOT NULL);
"""

_COMPACT_KEY = "compact_revision"

# Columns of a history row, in this order, wherever rows become events.
_ROW_COLS = "id, name, created, deleted, create_revision, prev_revision, value, old_value"


def prefix_end(prefix: str) -> Optional[str]:
    """The smallest string greater than every string that starts with `prefix`.

    None means "no upper bound" (empty prefix).  Python compares str by code
    point, which is the same order SQLite's BINARY collation gives UTF-8 text,
    so the bound is valid on both sides."""
    p = prefix
    while p:
        c = ord(p[-1])
        if c < 0x10FFFF:
            n = c + 1
            if 0xD800 <= n <= 0xDFFF:  # surrogates cannot be encoded in UTF-8
                n = 0xE000
            return p[:-1] + chr(n)
        p = p[:-1]
    return None


def _range_sql(prefix: str, start_after: Optional[str], col: str = "name") -> tuple[str, list[Any]]:
    """A WHERE fragment selecting keys under `prefix` (and > start_after).

    Range comparisons, not LIKE: '%' and '_' in keys must match literally, and a
    range can use the (name, id) index."""
    if start_after is not None and start_after >= prefix:
        sql, args = f"{col} > ?", [start_after]
    else:
        sql, args = f"{col} >= ?", [prefix]
    end = prefix_end(prefix)
    if end is not None:
        sql += f" AND {col} < ?"
        args.append(end)
    return sql, args


def _row_event(row: tuple) -> Event:
    rid, name, created, deleted, create_rev, prev_rev, value, old_value = row
    if deleted:
        kv = KeyValue(name, value, rid, create_rev)
        return Event("DELETE", kv, KeyValue(name, value, prev_rev, create_rev))
    kv = KeyValue(name, value, rid, create_rev)
    if created:
        return Event("PUT", kv, None)
    return Event("PUT", kv, KeyValue(name, old_value, prev_rev, create_rev))


def _connect(path: str) -> sqlite3.Connection:
    # isolation_level=None: we issue BEGIN/COMMIT ourselves so a transaction is
    # exactly what we mean (a group commit, or one read snapshot).
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA busy_timeout = 10000")
    return conn


class _Op:
    __slots__ = ("kind", "key", "value", "expected", "future")

    def __init__(self, kind: str, key: str, value: Any, expected: int, future: Optional[asyncio.Future]):
        self.kind = kind
        self.key = key
        self.value = value
        self.expected = expected
        self.future = future


class SQLiteWatch:
    """One watch on a SQLiteStore: an async iterator of Events.

    Besides iteration it reports *progress*: `progress_revision` is a revision P
    such that every event under the prefix with revision <= P has already been
    returned by `__anext__`.  P can run ahead of the last event (writes to other
    prefixes move it), which is what lets a watch cache prove it is current with
    respect to the store-wide revision (see WatchCache.wait_for)."""

    def __init__(self, store: "SQLiteStore", prefix: str, start_after: int) -> None:
        self._store = store
        self.prefix = prefix
        self._last = start_after
        self._replay: collections.deque[Event] = collections.deque()
        self._buf: collections.deque[Event] = collections.deque()
        self._waiter: Optional[asyncio.Future] = None
        self._progress_waiters: list[asyncio.Future] = []
        self._error: Optional[BaseException] = None
        self._closed = False  # store closed: end after draining
        self._started = False
        self._live = False  # replay from the table is finished
        self._done = False  # ended; further __anext__ raises StopAsyncIteration

    def __aiter__(self) -> "SQLiteWatch":
        return self

    @property
    def progress_revision(self) -> int:
        if not self._started or not self._live or self._replay or self._done or self._error is not None:
            return self._last
        if self._buf:
            return max(self._last, self._buf[0].revision - 1)
        return max(self._last, self._store._delivered_rev)

    @property
    def ended(self) -> bool:
        """True once the watch has ended or will end (error pending, store closed)."""
        return self._done or self._error is not None or self._closed

    async def wait_progress(self, revision: int) -> None:
        """Return once `progress_revision >= revision`, or the watch has ended."""
        loop = asyncio.get_running_loop()
        while not self.ended and self.progress_revision < revision:
            fut = loop.create_future()
            self._progress_waiters.append(fut)
            self._store._progress_watches.add(self)
            try:
                await fut
            finally:
                if fut in self._progress_waiters:
                    self._progress_waiters.remove(fut)

    async def __anext__(self) -> Event:
        if self._done:
            raise StopAsyncIteration
        try:
            if not self._started:
                self._start()
            while True:
                if self._replay:
                    ev = self._replay.popleft()
                    return self._emit(ev)
                if not self._live:
                    page = await self._store._read_history(self.prefix, self._last, REPLAY_PAGE)
                    if len(page) < REPLAY_PAGE:
                        self._live = True
                    self._replay.extend(page)
                    continue
                while self._buf:
                    ev = self._buf.popleft()
                    if ev.revision > self._last:  # replay may already have returned it
                        return self._emit(ev)
                if self._error is not None:
                    raise self._error
                if self._closed:
                    raise StopAsyncIteration
                self._notify_progress()  # caught up: progress just became the delivered revision
                fut = asyncio.get_running_loop().create_future()
                self._waiter = fut
                try:
                    await fut
                finally:
                    self._waiter = None
        except BaseException as e:
            if not isinstance(e, asyncio.CancelledError):
                self._finish()
            raise

    def _emit(self, ev: Event) -> Event:
        self._last = ev.revision
        if self._progress_waiters:
            self._notify_progress()
        return ev

    def _start(self) -> None:
        store = self._store
        if store._closing:
            raise StoreClosedError("store is closed")
        # Subscribe before reading history: every commit is then either visible
        # to the history query or delivered to our buffer (or both; duplicates
        # are skipped by revision), so nothing falls in between.
        store._subscribe(self)
        self._started = True
        if self._last < store._compacted:
            raise CompactedError(self._last, store._compacted)

    def _push(self, events: list[Event]) -> None:
        if self._done or self._error is not None:
            return
        self._buf.extend(events)
        if len(self._buf) > WATCH_QUEUE_LIMIT:
            # Bounded memory and never block the writer: drop this watcher, the
            # client re-lists and watches again.
            self._buf.clear()
            self._error = WatchTooSlowError(self._last, f"more than {WATCH_QUEUE_LIMIT} events pending")
            self._store._unsubscribe(self)
            self._notify_progress()
        self._wake()

    def _wake(self) -> None:
        w = self._waiter
        if w is not None and not w.done():
            w.set_result(None)

    def _notify_progress(self) -> None:
        waiters, self._progress_waiters = self._progress_waiters, []
        for f in waiters:
            if not f.done():
                f.set_result(None)

    def _close_from_store(self) -> None:
        self._closed = True
        self._wake()
        self._notify_progress()

    def _finish(self) -> None:
        if self._done:
            return
        self._done = True
        self._buf.clear()
        self._replay.clear()
        self._store._unsubscribe(self)
        self._notify_progress()

    async def aclose(self) -> None:
        """Stop watching and release the subscription."""
        self._finish()
        self._wake()


class SQLiteStore(Store):
    """The default datastore: a revision log in one SQLite file (WAL, synchronous=FULL)."""

    def __init__(self, path: str, *, compact_interval: float = 300, compact_keep: int = 1000) -> None:
        if path in ("", ":memory:") or path.startswith("file::memory:"):
            raise ValueError("SQLiteStore needs a file path (readers use their own connections)")
        self.path = path
        self.compact_interval = compact_interval
        self.compact_keep = compact_keep
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._queue: queue.SimpleQueue[_Op] = queue.SimpleQueue()
        self._writer: Optional[threading.Thread] = None
        self._readers: Optional[ThreadPoolExecutor] = None
        self._reader_local = threading.local()
        self._reader_conns: list[sqlite3.Connection] = []
        self._reader_lock = threading.Lock()
        # _rev is written by the writer thread only (after each commit) and read
        # anywhere; a plain int attribute is safe to share under the GIL.
        self._rev = 0
        self._compacted = 0
        self._delivered_rev = 0  # newest revision already fanned out to watchers (loop thread)
        # Weak: an abandoned (never closed) watch must not stay subscribed forever.
        self._watchers: dict[str, weakref.WeakSet[SQLiteWatch]] = {}
        self._progress_watches: set[SQLiteWatch] = set()
        self._compact_task: Optional[asyncio.Task] = None
        self._compact_job: Optional[dict] = None  # writer thread only
        self._started = False
        self._closing = False
        self._fatal: Optional[BaseException] = None
        # Counters for tests and benchmarks (written by the writer thread).
        self.stats = {"commits": 0, "ops": 0, "compacted_rows": 0}

    # ---- lifecycle -----------------------------------------------------------------

    async def start(self) -> None:
        """Open the database (creating it and its directory if needed) and start the writer."""
        if self._started:
            return
        self._loop = asyncio.get_running_loop()
        d = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(d, exist_ok=True)
        ready: asyncio.Future = self._loop.create_future()
        self._writer = threading.Thread(
            target=self._writer_main, args=(ready,), name=f"sqlite-writer:{os.path.basename(self.path)}", daemon=True
        )
        self._writer.start()
        await ready
        self._delivered_rev = self._rev
        self._readers = ThreadPoolExecutor(max_workers=READER_THREADS, thread_name_prefix="sqlite-reader")
        self._started = True
        if self.compact_interval and self.compact_interval > 0:
            self._compact_task = asyncio.create_task(self._compact_loop(), name="sqlite-compactor")

    async def close(self) -> None:
        """Finish queued writes, stop the writer, end all watches, close connections."""
        if not self._started or self._closing:
            return
        self._closing = True
        if self._compact_task is not None:
            self._compact_task.cancel()
            try:
                await self._compact_task
            except (asyncio.CancelledError, Exception):
                pass
        self._queue.put(_Op("stop", "", None, 0, None))
        assert self._writer is not None
        await asyncio.to_thread(self._writer.join)
        # Deliveries the writer scheduled before exiting are already queued on the
        # loop ahead of anything we schedule now; let them run first.
        await asyncio.sleep(0)
        for ws in list(self._watchers.values()):
            for w in list(ws):
                w._close_from_store()
        self._watchers.clear()
        if self._readers is not None:
            await asyncio.to_thread(self._readers.shutdown, True)
        with self._reader_lock:
            for c in self._reader_conns:
                try:
                    c.close()
                except sqlite3.Error:
                    pass
            self._reader_conns.clear()

    # ---- writes ----------------------------------------------------------------------

    def _submit(self, kind: str, key: str, value: Any = None, expected: int = 0) -> asyncio.Future:
        if not self._started:
            raise StorageError("store not started")
        if self._closing:
            raise StoreClosedError("store is closed")
        if self._fatal is not None:
            raise StorageError(f"store writer failed: {self._fatal}")
        if not isinstance(key, str):
            raise TypeError(f"key must be str, not {type(key).__name__}")
        assert self._loop is not None
        fut = self._loop.create_future()
        self._queue.put(_Op(kind, key, value, expected, fut))
        return fut

    async def create(self, key: str, value: bytes) -> KeyValue:
        return await self._submit("create", key, bytes(value))

    async def update(self, key: str, value: bytes, expected_mod_revision: int) -> KeyValue:
        return await self._submit("update", key, bytes(value), expected_mod_revision)

    async def delete(self, key: str, expected_mod_revision: int = 0) -> KeyValue:
        return await self._submit("delete", key, None, expected_mod_revision)

    async def compact(self, revision: int) -> None:
        """Drop history older than `revision`; returns once the rows are gone."""
        if revision <= self._compacted:
            return
        if revision > self._rev:
            raise FutureRevisionError(revision, self._rev)
        await self._submit("compact", "", None, revision)

    async def current_revision(self) -> int:
        return self._rev

    async def compacted_revision(self) -> int:
        return self._compacted

    # ---- writer thread ---------------------------------------------------------------

    def _writer_main(self, ready: asyncio.Future) -> None:
        loop = self._loop
        assert loop is not None
        try:
            conn = _connect(self.path)
            conn.execute("PRAGMA journal_mode = WAL")
            # FULL: the WAL is fsynced at every commit, so an acknowledged write
            # survives power loss (NORMAL would only survive a process crash).
            conn.execute("PRAGMA synchronous = FULL")
            conn.executescript(_SCHEMA)
            self._rev = self._seq(conn)
            row = conn.execute("SELECT v FROM meta WHERE k = ?", (_COMPACT_KEY,)).fetchone()
            self._compacted = row[0] if row else 0
        except BaseException as e:
            loop.call_soon_threadsafe(_set_exception, ready, StorageError(f"cannot open {self.path}: {e}"))
            return
        loop.call_soon_threadsafe(_set_result, ready, None)
        try:
            self._writer_loop(conn)
        except BaseException as e:  # a bug or a dead disk: fail loudly, not silently hang
            log.exception("sqlite writer thread died")
            self._fatal = e
            self._fail_pending(StorageError(f"store writer failed: {e}"))
        finally:
            try:
                conn.close()
            except sqlite3.Error:
                pass

    def _fail_pending(self, err: StorageError) -> None:
        results = []
        while True:
            try:
                op = self._queue.get_nowait()
            except queue.Empty:
                break
            if op.future is not None:
                results.append((op.future, None, err))
        if self._compact_job:
            results.extend((f, None, err) for f in self._compact_job["futures"])
            self._compact_job = None
        self._post([], self._rev, results)

    def _writer_loop(self, conn: sqlite3.Connection) -> None:
        q = self._queue
        while True:
            if self._compact_job is not None:
                try:
                    first = q.get_nowait()
                except queue.Empty:
                    first = None
            else:
                first = q.get()
            if first is not None:
                batch = [first]
                while len(batch) < MAX_BATCH:
                    try:
                        batch.append(q.get_nowait())
                    except queue.Empty:
                        break
                stop = any(op.kind == "stop" for op in batch)
                self._commit_batch(conn, [op for op in batch if op.kind != "stop"])
                if stop:
                    if self._compact_job:
                        err = StoreClosedError("store closed before compaction finished")
                        self._post([], self._rev, [(f, None, err) for f in self._compact_job["futures"]])
                        self._compact_job = None
                    self._fail_pending(StoreClosedError("store is closed"))
                    return
            # One compaction chunk per round: compaction makes progress under
            # constant write load, and never holds the write lock for long.
            if self._compact_job is not None:
                self._compact_chunk(conn)

    def _commit_batch(self, conn: sqlite3.Connection, ops: list[_Op]) -> None:
        if not ops:
            return
        results: list[tuple[asyncio.Future, Any, Optional[BaseException]]] = []
        events: list[Event] = []
        compact_futs: list[asyncio.Future] = []
        compact_to = 0
        rev = self._rev
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                for op in ops:
                    if op.kind == "compact":
                        compact_to = max(compact_to, op.expected)
                        compact_futs.append(op.future)
                        continue
                    try:
                        kv, ev = self._apply(conn, op, rev + 1)
                    except StorageError as e:
                        results.append((op.future, None, e))
                        continue
                    rev += 1
                    events.append(ev)
                    results.append((op.future, kv, None))
                if compact_to > self._compacted:
                    conn.execute(
                        "INSERT OR REPLACE INTO meta (k, v) VALUES (?, ?)", (_COMPACT_KEY, compact_to)
                    )
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        except Exception as e:
            # The whole group is rolled back; each caller learns its write failed.
            # The writer itself lives on (a full disk may clear up).
            log.warning("group commit of %d ops failed: %s", len(ops), e)
            err = StorageError(f"write failed: {e}")
            self._post([], self._rev, [(op.future, None, err) for op in ops if op.future is not None])
            return
        # Durable now (FULL sync); only from here on may anyone learn of the new revisions.
        self._rev = rev
        self.stats["commits"] += 1
        self.stats["ops"] += len(ops)
        if compact_to > self._compacted:
            # Readers see the new compaction point (and refuse older revisions)
            # before any row goes; the compact() callers are answered once the
            # rows are actually gone.
            self._compacted = compact_to
            self._start_compaction(conn, compact_to, compact_futs)
        else:
            results.extend((f, None, None) for f in compact_futs)
        self._post(events, rev, results)

    def _apply(self, conn: sqlite3.Connection, op: _Op, rev: int) -> tuple[KeyValue, Event]:
        """Check and write one op as revision `rev`; raises StorageError subclasses for CAS failures."""
        key = op.key
        row = conn.execute(
            "SELECT id, deleted, create_revision, value FROM kv WHERE name = ? ORDER BY id DESC LIMIT 1", (key,)
        ).fetchone()
        live = row is not None and not row[1]
        current = KeyValue(key, row[3], row[0], row[2]) if live else None
        if op.kind == "create":
            if current is not None:
                raise KeyExistsError(key, current)
            prev_id = row[0] if row is not None else 0
            conn.execute(
                "INSERT INTO kv (id, name, created, deleted, create_revision, prev_revision, value, old_value)"
                " VALUES (?, ?, 1, 0, ?, ?, ?, NULL)",
                (rev, key, rev, prev_id, op.value),
            )
            kv = KeyValue(key, op.value, rev, rev)
            return kv, Event("PUT", kv, None)
        if current is None:
            raise KeyNotFoundError(key)
        if op.expected and current.mod_revision != op.expected:
            raise ConflictError(key, current)
        if op.kind == "update":
            if not op.expected:
                raise ConflictError(key, current)  # update always needs a precondition
            conn.execute(
                "INSERT INTO kv (id, name, created, deleted, create_revision, prev_revision, value, old_value)"
                " VALUES (?, ?, 0, 0, ?, ?, ?, ?)",
                (rev, key, current.create_revision, current.mod_revision, op.value, current.value),
            )
            kv = KeyValue(key, op.value, rev, current.create_revision)
            return kv, Event("PUT", kv, current)
        if op.kind == "delete":
            # The tombstone keeps the last value: watchers get it as the DELETE's object.
            conn.execute(
                "INSERT INTO kv (id, name, created, deleted, create_revision, prev_revision, value, old_value)"
                " VALUES (?, ?, 0, 1, ?, ?, ?, NULL)",
                (rev, key, current.create_revision, current.mod_revision, current.value),
            )
            kv = KeyValue(key, current.value, rev, current.create_revision)
            return kv, Event("DELETE", kv, current)
        raise StorageError(f"unknown op {op.kind}")

    def _start_compaction(self, conn: sqlite3.Connection, target: int, futures: list) -> None:
        job = self._compact_job
        if job is None:
            row = conn.execute("SELECT MIN(id) FROM kv").fetchone()
            lo = row[0] if row and row[0] is not None else target
            self._compact_job = {"target": target, "lo": lo, "futures": list(futures)}
        else:
            job["target"] = max(job["target"], target)
            job["futures"].extend(futures)

    def _compact_chunk(self, conn: sqlite3.Connection) -> None:
        job = self._compact_job
        assert job is not None
        target, lo = job["target"], job["lo"]
        hi = min(lo + COMPACT_CHUNK, target)
        if lo < hi:
            try:
                conn.execute("BEGIN IMMEDIATE")
                # A row older than the target is history when a newer row of the
                # same key is also older than the target (superseded), or when it
                # is a tombstone (the key did not exist at the target).  The
                # newest row below the target of each live key stays: it *is*
                # the key's value at the target revision.
                cur = conn.execute(
                    "DELETE FROM kv WHERE id >= ? AND id < ? AND (deleted = 1 OR EXISTS ("
                    " SELECT 1 FROM kv AS n WHERE n.name = kv.name AND n.id > kv.id AND n.id < ?))",
                    (lo, hi, target),
                )
                conn.execute("COMMIT")
                self.stats["compacted_rows"] += max(cur.rowcount, 0)
            except sqlite3.Error as e:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                log.warning("compaction chunk failed, will retry later: %s", e)
                err = StorageError(f"compaction failed: {e}")
                self._post([], self._rev, [(f, None, err) for f in job["futures"]])
                self._compact_job = None
                return
            job["lo"] = hi
        if hi >= target:
            self._post([], self._rev, [(f, None, None) for f in job["futures"]])
            self._compact_job = None

    def _post(self, events: list[Event], rev: int, results: list) -> None:
        assert self._loop is not None
        try:
            self._loop.call_soon_threadsafe(self._deliver, events, rev, results)
        except RuntimeError:  # loop already closed: nobody is waiting any more
            pass

    @staticmethod
    def _seq(conn: sqlite3.Connection) -> int:
        row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'kv'").fetchone()
        return row[0] if row else 0

    # ---- loop-side fan-out -------------------------------------------------------------

    def _deliver(self, events: list[Event], rev: int, results: list) -> None:
        # Events first, then futures: by the time a writer learns its revision,
        # every watcher (and watch cache) already has the event buffered.
        if events:
            for prefix, ws in list(self._watchers.items()):
                if not ws:
                    del self._watchers[prefix]
                    continue
                matched = [e for e in events if e.kv.key.startswith(prefix)] if prefix else events
                if matched:
                    for w in list(ws):
                        w._push(matched)
        if rev > self._delivered_rev:
            self._delivered_rev = rev
        for fut, value, exc in results:
            if fut is None or fut.done():
                continue
            if exc is not None:
                fut.set_exception(exc)
            else:
                fut.set_result(value)
        if self._progress_watches:
            ws, self._progress_watches = self._progress_watches, set()
            for w in ws:
                w._notify_progress()

    def _subscribe(self, w: SQLiteWatch) -> None:
        ws = self._watchers.get(w.prefix)
        if ws is None:
            ws = self._watchers[w.prefix] = weakref.WeakSet()
        ws.add(w)

    def _unsubscribe(self, w: SQLiteWatch) -> None:
        ws = self._watchers.get(w.prefix)
        if ws is not None:
            ws.discard(w)
            if not ws:
                del self._watchers[w.prefix]
        self._progress_watches.discard(w)

    # ---- reads ---------------------------------------------------------------------------

    def _reader(self) -> sqlite3.Connection:
        conn = getattr(self._reader_local, "conn", None)
        if conn is None:
            conn = _connect(self.path)
            conn.execute("PRAGMA query_only = 1")
            self._reader_local.conn = conn
            with self._reader_lock:
                self._reader_conns.append(conn)
        return conn

    async def _read(self, fn: Callable, *args: Any) -> Any:
        if not self._started:
            raise StorageError("store not started")
        if self._closing:
            raise StoreClosedError("store is closed")
        assert self._loop is not None
        try:
            return await self._loop.run_in_executor(self._readers, fn, *args)
        except RuntimeError as e:  # executor shut down under us
            raise StoreClosedError(str(e)) from None
        except sqlite3.Error as e:
            raise StorageError(f"read failed: {e}") from e

    def _snapshot(self, conn: sqlite3.Connection, revision: int) -> int:
        """Inside an open read transaction: validate `revision` and return the one to read at."""
        current = self._seq(conn)
        row = conn.execute("SELECT v FROM meta WHERE k = ?", (_COMPACT_KEY,)).fetchone()
        compacted = row[0] if row else 0
        rev = revision or current
        if rev < compacted:
            raise CompactedError(rev, compacted)
        if rev > current:
            raise FutureRevisionError(rev, current)
        return rev

    async def get(self, key: str, *, revision: int = 0) -> Optional[KeyValue]:
        return await self._read(self._r_get, key, revision)

    def _r_get(self, key: str, revision: int) -> Optional[KeyValue]:
        conn = self._reader()
        if not revision:
            row = conn.execute(
                "SELECT id, create_revision, value, deleted FROM kv WHERE name = ? ORDER BY id DESC LIMIT 1", (key,)
            ).fetchone()
        else:
            conn.execute("BEGIN")
            try:
                rev = self._snapshot(conn, revision)
                row = conn.execute(
                    "SELECT id, create_revision, value, deleted FROM kv WHERE name = ? AND id <= ?"
                    " ORDER BY id DESC LIMIT 1",
                    (key, rev),
                ).fetchone()
            finally:
                conn.execute("COMMIT")
        if row is None or row[3]:
            return None
        return KeyValue(key, row[2], row[0], row[1])

    async def list(
        self, prefix: str, *, revision: int = 0, limit: int = 0, start_after: Optional[str] = None
    ) -> ListResult:
        return await self._read(self._r_list, prefix, revision, limit, start_after)

    def _r_list(self, prefix: str, revision: int, limit: int, start_after: Optional[str]) -> ListResult:
        conn = self._reader()
        where, args = _range_sql(prefix, start_after, "a.name")
        # For each key (walking the (name, id) index in key order) keep only the
        # row that is the newest at `rev`; LIMIT stops the walk early for pages.
        base = (
            f" FROM kv AS a WHERE {where} AND a.id = "
            "(SELECT MAX(b.id) FROM kv AS b WHERE b.name = a.name AND b.id <= ?) AND a.deleted = 0"
        )
        conn.execute("BEGIN")
        try:
            rev = self._snapshot(conn, revision)
            sql = "SELECT a.id, a.name, a.create_revision, a.value" + base + " ORDER BY a.name"
            qargs = [*args, rev]
            if limit > 0:
                sql += " LIMIT ?"
                qargs.append(limit + 1)
            rows = conn.execute(sql, qargs).fetchall()
            more = limit > 0 and len(rows) > limit
            if more:
                rows = rows[:limit]
                count = conn.execute("SELECT COUNT(*)" + base, [*args, rev]).fetchone()[0]
            else:
                count = len(rows)
        finally:
            conn.execute("COMMIT")
        items = [KeyValue(name, value, rid, crev) for rid, name, crev, value in rows]
        return ListResult(items, rev, more, count)

    async def _read_history(self, prefix: str, after: int, limit: int) -> list[Event]:
        return await self._read(self._r_history, prefix, after, limit)

    def _r_history(self, prefix: str, after: int, limit: int) -> list[Event]:
        conn = self._reader()
        where, args = _range_sql(prefix, None, "+name")  # '+': walk rowids from `after`, not the name index
        conn.execute("BEGIN")
        try:
            row = conn.execute("SELECT v FROM meta WHERE k = ?", (_COMPACT_KEY,)).fetchone()
            compacted = row[0] if row else 0
            if after < compacted:
                raise CompactedError(after, compacted)
            rows = conn.execute(
                f"SELECT {_ROW_COLS} FROM kv WHERE id > ? AND {where} ORDER BY id LIMIT ?", [after, *args, limit]
            ).fetchall()
        finally:
            conn.execute("COMMIT")
        return [_row_event(r) for r in rows]

    # ---- watch & compaction timer --------------------------------------------------------

    def watch(self, prefix: str, start_after: int) -> SQLiteWatch:
        """Events under `prefix` after `start_after`, then live; see SQLiteWatch."""
        return SQLiteWatch(self, prefix, start_after)

    async def _compact_loop(self) -> None:
        while True:
            await asyncio.sleep(self.compact_interval)
            target = self._rev - self.compact_keep
            if target > self._compacted:
                try:
                    await self.compact(target)
                except StoreClosedError:
                    return
                except StorageError as e:
                    log.warning("periodic compaction to %d failed: %s", target, e)


def _set_result(fut: asyncio.Future, value: Any) -> None:
    if not fut.done():
        fut.set_result(value)


def _set_exception(fut: asyncio.Future, exc: BaseException) -> None:
    if not fut.done():
        fut.set_exception(exc)
