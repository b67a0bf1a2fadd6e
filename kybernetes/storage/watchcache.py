"""The API server's per-resource watch cache.

One WatchCache mirrors one key prefix (a resource, e.g. "/registry/pods/"): it
lists the prefix once, then follows a store watch from that revision, keeping

- the current objects (key -> KeyValue) and a sorted key list, so a list or a
  page of it is served from memory with bisect (no sort per request), and
- a window of the newest events, so API watches are served from memory: each
  watcher is only a cursor into that window, so an event costs O(1) to record
  however many watchers there are, and a slow watcher costs no memory — once
  its cursor falls out of the window it is ended with WatchTooSlowError (410).

Being current.  The cache's `revision` is the newest store revision it is known
to reflect.  Events only say so much: writes to other prefixes move the
store-wide revision without telling this cache anything.  When the store's
watch reports progress (SQLiteWatch does: `progress_revision`/`wait_progress`),
`wait_for(rev)` accepts any store-wide revision and advances the cache's
revision to it once nothing under the prefix is outstanding; with a backend
that cannot report progress, `wait_for` only completes when an event at or
after `rev` under this prefix arrives (or times out: fall back to the store).

How the API server uses it:

- list, no resourceVersion (a consistent read): `await cache.sync()` (= wait_for
  the store's current revision), then `cache.list(prefix=ns_prefix, limit=n)`;
  the list's resourceVersion is `ListResult.revision`.  Continue pages are read
  from the store at that revision (`store.list(..., revision=rv, start_after=)`),
  because the cache only holds the present.
- list with resourceVersion=N ("not older than"): `await cache.wait_for(N)`;
  resourceVersion=0 ("any"): `cache.list()` straight away.
- create/update/delete: answer from the KeyValue the store returned.  When the
  handler (or the next request of the same client) reads the cache afterwards,
  `await cache.wait_for(kv.mod_revision)` first; with SQLiteStore the event is
  already buffered when the write returns, so this costs about one loop turn.
- watch from resourceVersion R: `cache.watch(R, prefix=ns_prefix)`; map
  CompactedError (and its subclass WatchTooSlowError) to 410 Gone / Expired.
"""

from __future__ import annotations

import asyncio
import bisect
import logging
from typing import AsyncIterator, Optional

from .errors import StoreClosedError, WatchTooSlowError
from .interface import CompactedError, Event, KeyValue, ListResult, StorageError, Store

log = logging.getLogger(__name__)

LIST_PAGE = 5000  # page size of the (re-)list that fills the cache


def _prefix_end(prefix: str) -> Optional[str]:
    from .sqlite import prefix_end

    return prefix_end(prefix)


class WatchCache:
    """An in-memory, always-following mirror of one prefix of a Store."""

    def __init__(self, store: Store, prefix: str, *, window: int = 10000) -> None:
        if window < 1:
            raise ValueError("window must be >= 1")
        self.store = store
        self.prefix = prefix
        self.window = window
        self._items: dict[str, KeyValue] = {}
        self._keys: list[str] = []  # sorted keys of _items
        self._rev = 0
        # The event window: _log[i] has absolute position _base + i; watchers
        # keep absolute positions, so trimming the front never invalidates them.
        self._log: list[Event] = []
        self._log_revs: list[int] = []
        self._base = 0
        self._floor = 0  # oldest start_after the window can still serve
        self._generation = 0  # bumped on every re-list: history before it is lost
        # Futures of tasks waiting for any change; all resolved on each change.
        # (Not an asyncio.Event pulsed with set+clear: a waiter wrapped in a task
        # by asyncio.wait_for registers only when that task first runs, and would
        # miss a pulse in between.  A future registered synchronously cannot.)
        self._waiters: list[asyncio.Future] = []
        self._watch: Optional[AsyncIterator[Event]] = None
        self._task: Optional[asyncio.Task] = None
        self._ended = False
        self._started = False
        self.relists = 0  # how many times the cache had to re-list (for tests/metrics)

    # ---- lifecycle --------------------------------------------------------------------

    async def start(self) -> None:
        """List the prefix, then start following it.  Returns once the initial list is in memory."""
        if self._started:
            return
        await self._relist()
        self._started = True
        self._task = asyncio.create_task(self._run(), name=f"watchcache:{self.prefix}")

    async def stop(self) -> None:
        """Stop following; watchers of the cache end."""
        self._ended = True
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
            self._task = None
        await self._close_watch()
        self._pulse()

    @property
    def revision(self) -> int:
        """The newest store revision this cache is known to reflect."""
        return self._rev

    @property
    def oldest_watchable(self) -> int:
        """The smallest `start_after` that watch() can serve right now."""
        return self._floor

    def __len__(self) -> int:
        return len(self._keys)

    # ---- following the store --------------------------------------------------------------

    async def _relist(self) -> None:
        items: dict[str, KeyValue] = {}
        keys: list[str] = []
        res = await self.store.list(self.prefix, limit=LIST_PAGE)
        rev = res.revision
        while True:
            for kv in res.items:
                items[kv.key] = kv
                keys.append(kv.key)
            if not res.more or not res.items:
                break
            res = await self.store.list(self.prefix, revision=rev, limit=LIST_PAGE, start_after=res.items[-1].key)
        # Swap everything in one step (no await below): readers never see a mix.
        self._items = items
        self._keys = keys
        self._rev = rev
        self._base += len(self._log)
        self._log = []
        self._log_revs = []
        self._floor = rev
        self._generation += 1
        self.relists += 1
        self._pulse()

    async def _run(self) -> None:
        backoff = 0.05
        while not self._ended:
            try:
                self._watch = self.store.watch(self.prefix, self._rev)
                async for ev in self._watch:
                    # No await between receiving and applying: "returned by the
                    # store watch" implies "applied here", which wait_for relies on.
                    self._apply(ev)
                    backoff = 0.05
                # The store closed: nothing more will come.
                break
            except asyncio.CancelledError:
                raise
            except StoreClosedError:
                break
            except Exception as e:
                if isinstance(e, CompactedError):
                    log.info("watch cache %s: store watch ended (%s), re-listing", self.prefix, e)
                else:
                    log.warning("watch cache %s: store watch failed (%s), re-listing", self.prefix, e)
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, 5.0)
                await self._close_watch()
                while not self._ended:
                    try:
                        await self._relist()
                        break
                    except asyncio.CancelledError:
                        raise
                    except StoreClosedError:
                        self._ended = True
                    except Exception as e2:
                        log.warning("watch cache %s: re-list failed (%s)", self.prefix, e2)
                        await asyncio.sleep(backoff)
                        backoff = min(backoff * 2, 5.0)
        self._ended = True
        await self._close_watch()
        self._pulse()

    async def _close_watch(self) -> None:
        w, self._watch = self._watch, None
        if w is not None:
            aclose = getattr(w, "aclose", None)
            if aclose is not None:
                try:
                    await aclose()
                except Exception:
                    pass

    def _apply(self, ev: Event) -> None:
        if ev.revision <= self._rev:
            return  # already reflected (e.g. the cache was advanced past it)
        key = ev.kv.key
        if ev.type == "PUT":
            if key not in self._items:
                bisect.insort(self._keys, key)
            self._items[key] = ev.kv
        elif self._items.pop(key, None) is not None:
            i = bisect.bisect_left(self._keys, key)
            del self._keys[i]
        self._rev = ev.revision
        self._log.append(ev)
        self._log_revs.append(ev.revision)
        # Trim in chunks so the cost of shifting the lists is amortised.
        excess = len(self._log) - self.window
        if excess > max(16, self.window // 8):
            self._floor = self._log_revs[excess - 1]
            del self._log[:excess]
            del self._log_revs[:excess]
            self._base += excess
        self._pulse()

    def _pulse(self) -> None:
        if self._waiters:
            ws, self._waiters = self._waiters, []
            for f in ws:
                if not f.done():
                    f.set_result(None)

    def _changed(self) -> asyncio.Future:
        """A future resolved at the next change of the cache (or when it stops)."""
        f = asyncio.get_running_loop().create_future()
        ws = self._waiters
        if len(ws) >= 1024 and len(ws) & 1023 == 0:
            # Waiters cancelled by timeouts pile up on an idle cache; drop them.
            self._waiters = ws = [w for w in ws if not w.done()]
        ws.append(f)
        return f

    # ---- reads ------------------------------------------------------------------------------

    def get(self, key: str) -> Optional[KeyValue]:
        """The cached value of `key`, or None."""
        return self._items.get(key)

    def list(
        self, start_after: Optional[str] = None, limit: int = 0, *, prefix: Optional[str] = None
    ) -> ListResult:
        """Cached keys in key order at `self.revision`.

        `prefix` narrows to a sub-prefix (e.g. one namespace); `start_after` and
        `limit` page as Store.list does.  Later pages of the same list must be
        read at the same revision — from the store (`store.list(..., revision=)`)
        once the cache has moved on."""
        keys = self._keys
        lo, hi = 0, len(keys)
        if prefix:
            lo = bisect.bisect_left(keys, prefix)
            end = _prefix_end(prefix)
            if end is not None:
                hi = bisect.bisect_left(keys, end, lo)
        if start_after is not None:
            lo = max(lo, bisect.bisect_right(keys, start_after))
        n = max(0, hi - lo)
        more = bool(limit) and limit > 0 and n > limit
        sel = keys[lo : lo + limit] if more else keys[lo:hi]
        items = self._items
        return ListResult([items[k] for k in sel], self._rev, more, n)

    async def wait_for(self, revision: int, timeout: Optional[float] = 5.0) -> int:
        """Wait until the cache reflects every change up to `revision`, which may be
        any store-wide revision (e.g. from `store.current_revision()` or a write's
        KeyValue).  Returns the cache's revision; raises TimeoutError after
        `timeout` seconds (the caller may then read from the store directly) and
        StoreClosedError if the cache has stopped."""
        if self._rev >= revision:
            return self._rev
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while self._rev < revision:
            if self._ended:
                raise StoreClosedError(f"watch cache {self.prefix} has stopped")
            w = self._watch
            progress = getattr(w, "progress_revision", None) if w is not None else None
            if progress is not None and progress > self._rev:
                # Every event under our prefix up to `progress` has been returned
                # by the watch and (see _run) applied, so the cache is exact at it.
                self._rev = progress
                continue
            remaining = None if deadline is None else deadline - loop.time()
            if remaining is not None and remaining <= 0:
                raise TimeoutError(f"watch cache {self.prefix} at {self._rev}, waiting for {revision}")
            waiter = None
            if w is not None and not getattr(w, "ended", False):
                waiter = getattr(w, "wait_progress", None)
            # Without progress reports (or between watches, while re-listing)
            # only a change of the cache itself can satisfy us.
            aw = waiter(revision) if waiter is not None else self._changed()
            try:
                await asyncio.wait_for(aw, remaining)
            except TimeoutError:
                if self._rev >= revision:
                    break
                raise TimeoutError(f"watch cache {self.prefix} at {self._rev}, waiting for {revision}") from None
        return self._rev

    async def sync(self, revision: Optional[int] = None, timeout: Optional[float] = 5.0) -> int:
        """Catch up to `revision`, or to the store's current revision when None.

        `await cache.sync()` then `cache.list()` gives a list that is current as
        of the moment sync was called (a consistent read)."""
        if revision is None:
            revision = await self.store.current_revision()
        return await self.wait_for(revision, timeout)

    def watch(self, start_after: int, *, prefix: Optional[str] = None) -> "CacheWatch":
        """Events with revision > `start_after` (optionally only under a sub-prefix),
        from the window then live.  Raises CompactedError on first iteration when the
        window no longer reaches back to `start_after`, and WatchTooSlowError when this
        watcher falls more than `window` events behind or the cache had to re-list."""
        return CacheWatch(self, start_after, prefix)


class CacheWatch:
    """A watch served by a WatchCache: a cursor into the cache's event window.

    A plain async iterator, not an async generator, so that cancelling one
    `__anext__` (e.g. `asyncio.wait_for(w.__anext__(), bookmark_interval)`)
    leaves the watch usable."""

    def __init__(self, cache: WatchCache, start_after: int, prefix: Optional[str]) -> None:
        self._cache = cache
        self._last = start_after
        self._prefix = prefix
        self._pos: Optional[int] = None  # absolute window position of the next event
        self._gen = 0
        self._done = False

    @property
    def last_revision(self) -> int:
        """The revision of the last event returned (or the start revision)."""
        return self._last

    def behind(self) -> bool:
        """Whether the cache may hold events this watch has not returned yet (a
        progress bookmark must then not claim the cache's revision: a client resuming
        from it would skip them)."""
        c = self._cache
        if self._pos is None:
            return c._rev > self._last
        return c._generation != self._gen or self._pos - c._base < len(c._log)

    def __aiter__(self) -> "CacheWatch":
        return self

    async def aclose(self) -> None:
        self._done = True

    async def __anext__(self) -> Event:
        c = self._cache
        if self._done:
            raise StopAsyncIteration
        try:
            if self._pos is None:
                if c._ended:
                    raise StoreClosedError(f"watch cache {c.prefix} has stopped")
                if self._last < c._floor:
                    raise CompactedError(self._last, c._floor)
                self._gen = c._generation
                self._pos = c._base + bisect.bisect_right(c._log_revs, self._last)
            prefix = self._prefix
            while True:
                if c._generation != self._gen:
                    raise WatchTooSlowError(self._last, "watch cache re-listed; history before it is gone")
                i = self._pos - c._base
                if i < 0:
                    raise WatchTooSlowError(self._last, f"fell more than {c.window} events behind")
                log_ = c._log
                while i < len(log_):
                    ev = log_[i]
                    i += 1
                    self._pos += 1
                    # _last may lie ahead of the cache (a client asked for a newer
                    # revision than the cache had reached): skip up to it.
                    if ev.revision > self._last and (prefix is None or ev.kv.key.startswith(prefix)):
                        self._last = ev.revision
                        return ev
                if c._ended:
                    raise StopAsyncIteration
                await c._changed()
        except (StopAsyncIteration, StorageError):
            self._done = True
            raise
