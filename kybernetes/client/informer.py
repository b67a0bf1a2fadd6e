"""Informers: a local cache of one resource kept current by list + watch.

The reflector loop: LIST (pages of 500) -> replace the store -> WATCH from the list's
resourceVersion with bookmarks.  When a watch ends it resumes from the last
resourceVersion seen, so no event is skipped; a 410 Gone (the resourceVersion was
compacted away) forces a fresh LIST, whose differences against the store are delivered
as add/update/delete events.  Errors back off exponentially (0.8 s doubling to 30 s,
jittered, reset after a healthy watch) as client-go's reflector does.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import random
import time
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Iterable, Optional, Union

from kybernetes.client.errors import APIStatusError, Gone, TransportError
from kybernetes.client.rest import ResourceHandle

__all__ = ["Informer", "Store", "EventHandlers", "object_key", "split_key"]

log = logging.getLogger("kybernetes.client.informer")

Obj = dict[str, Any]
Handler = Callable[..., Union[None, Awaitable[None]]]
IndexFunc = Callable[[Obj], Iterable[str]]

NAMESPACE_INDEX = "namespace"


def object_key(obj: Obj) -> str:
    """The cache key of an object: "namespace/name", or "name" when cluster-scoped."""
    meta = obj.get("metadata") or {}
    ns = meta.get("namespace")
    return f"{ns}/{meta.get('name', '')}" if ns else meta.get("name", "")


def split_key(key: str) -> tuple[str, str]:
    """(namespace, name) of a cache key; namespace is "" when cluster-scoped."""
    ns, sep, name = key.partition("/")
    return (ns, name) if sep else ("", ns)


class Store:
    """key -> object, with indexes (always one by namespace).  Values are the
    informer's copies: treat them as read-only."""

    def __init__(self) -> None:
        self._items: dict[str, Obj] = {}
        self._index_funcs: dict[str, IndexFunc] = {
            NAMESPACE_INDEX: lambda o: [(o.get("metadata") or {}).get("namespace") or ""],
        }
        self._indexes: dict[str, dict[str, set[str]]] = {NAMESPACE_INDEX: {}}

    def add_index(self, name: str, fn: IndexFunc) -> None:
        """Add an index (values of fn(obj)) and build it over what is stored."""
        self._index_funcs[name] = fn
        idx: dict[str, set[str]] = {}
        for key, obj in self._items.items():
            for v in fn(obj):
                idx.setdefault(v, set()).add(key)
        self._indexes[name] = idx

    def get(self, key: str) -> Optional[Obj]:
        return self._items.get(key)

    def list(self) -> list[Obj]:
        return list(self._items.values())

    def keys(self) -> list[str]:
        return list(self._items)

    def by_index(self, name: str, value: str) -> list[Obj]:
        return [self._items[k] for k in sorted(self._indexes[name].get(value, ()))]

    def by_namespace(self, namespace: str) -> list[Obj]:
        return self.by_index(NAMESPACE_INDEX, namespace)

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: str) -> bool:
        return key in self._items

    def _put(self, key: str, obj: Obj) -> Optional[Obj]:
        old = self._items.get(key)
        if old is not None:
            self._unindex(key, old)
        self._items[key] = obj
        for name, fn in self._index_funcs.items():
            for v in fn(obj):
                self._indexes[name].setdefault(v, set()).add(key)
        return old

    def _remove(self, key: str) -> Optional[Obj]:
        old = self._items.pop(key, None)
        if old is not None:
            self._unindex(key, old)
        return old

    def _unindex(self, key: str, obj: Obj) -> None:
        for name, fn in self._index_funcs.items():
            idx = self._indexes[name]
            for v in fn(obj):
                keys = idx.get(v)
                if keys is not None:
                    keys.discard(key)
                    if not keys:
                        del idx[v]


@dataclass
class EventHandlers:
    """Callbacks: on_add(obj), on_update(old, new), on_delete(obj).  Each may be a plain
    function or a coroutine function; they run in event order and should be quick
    (typically: enqueue a key)."""

    on_add: Optional[Handler] = None
    on_update: Optional[Handler] = None
    on_delete: Optional[Handler] = None


def _rv(obj: Obj) -> str:
    return (obj.get("metadata") or {}).get("resourceVersion") or ""


class Informer:
    """List-and-watch cache of one resource, optionally narrowed to a namespace and
    label/field selectors; `resync` > 0 re-delivers every object as an update (old is
    new) that often, for controllers that want periodic reconciliation."""

    def __init__(
        self,
        resource: ResourceHandle,
        namespace: Optional[str] = None,
        label_selector: Optional[str] = None,
        resync: float = 0,
        *,
        field_selector: Optional[str] = None,
        page_size: int = 500,
        min_watch_timeout: float = 300.0,
        backoff_initial: float = 0.8,
        backoff_max: float = 30.0,
        name: Optional[str] = None,
    ) -> None:
        self.resource = resource
        self.namespace = namespace
        self.label_selector = label_selector
        self.field_selector = field_selector
        self.resync = resync
        self.page_size = page_size
        self.min_watch_timeout = min_watch_timeout
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.name = name or f"{resource.group or 'core'}/{resource.version}/{resource.resource}"
        self.store = Store()
        self._handlers: list[EventHandlers] = []
        self._synced = asyncio.Event()
        self._lock = asyncio.Lock()  # store changes + their handler calls are one step
        self._joins: set[asyncio.Task[None]] = set()
        self._has_synced = False
        self._task: Optional[asyncio.Task[None]] = None
        self._resync_task: Optional[asyncio.Task[None]] = None
        self._stopping = False
        self.last_sync_resource_version: str = ""
        self.relists = 0  # how many LISTs were done (for tests and metrics)

    # ------------------------------------------------------------------ handlers
    def add_handlers(
        self,
        on_add: Optional[Handler] = None,
        on_update: Optional[Handler] = None,
        on_delete: Optional[Handler] = None,
    ) -> EventHandlers:
        """Register callbacks.  Registered after the cache has filled, on_add is called
        (later, from the informer task) for everything already cached, as client-go does."""
        h = EventHandlers(on_add, on_update, on_delete)
        if self._has_synced and self._task is not None:
            # join under the dispatch lock so the replayed adds precede any later event
            async def join() -> None:
                async with self._lock:
                    self._handlers.append(h)
                    for obj in self.store.list():
                        await self._call(h.on_add, obj)

            t = asyncio.get_running_loop().create_task(join())
            self._joins.add(t)
            t.add_done_callback(self._joins.discard)
        else:
            self._handlers.append(h)
        return h

    # settable single handlers, for the common case of one consumer
    def on_add(self, fn: Handler) -> Handler:
        self.add_handlers(on_add=fn)
        return fn

    def on_update(self, fn: Handler) -> Handler:
        self.add_handlers(on_update=fn)
        return fn

    def on_delete(self, fn: Handler) -> Handler:
        self.add_handlers(on_delete=fn)
        return fn

    async def _call(self, fn: Optional[Handler], *args: Any) -> None:
        if fn is None:
            return
        try:
            res = fn(*args)
            if inspect.isawaitable(res):
                await res
        except Exception:  # noqa: BLE001 - one bad handler must not stop the informer
            log.exception("informer %s: event handler %r failed", self.name, fn)

    async def _emit_add(self, obj: Obj) -> None:
        for h in list(self._handlers):
            await self._call(h.on_add, obj)

    async def _emit_update(self, old: Obj, new: Obj) -> None:
        for h in list(self._handlers):
            await self._call(h.on_update, old, new)

    async def _emit_delete(self, obj: Obj) -> None:
        for h in list(self._handlers):
            await self._call(h.on_delete, obj)

    # ------------------------------------------------------------------ cache reads
    def get(self, key: str) -> Optional[Obj]:
        return self.store.get(key)

    def list(self, namespace: Optional[str] = None) -> list[Obj]:
        return self.store.list() if namespace is None else self.store.by_namespace(namespace)

    def by_namespace(self, namespace: str) -> list[Obj]:
        return self.store.by_namespace(namespace)

    @property
    def has_synced(self) -> bool:
        """True once the first LIST has been delivered to the store and handlers."""
        return self._has_synced

    async def wait_synced(self, timeout: Optional[float] = None) -> bool:
        """Wait for has_synced; False on timeout."""
        if self._has_synced:
            return True
        try:
            async with asyncio.timeout(timeout):
                await self._synced.wait()
        except TimeoutError:
            return False
        return True

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> asyncio.Task[None]:
        """Start the reflector (and resync) tasks; idempotent.  After stop(), starting
        again keeps the cache and resumes watching from the last resourceVersion."""
        if self._task is None:
            self._stopping = False
            self._task = asyncio.get_running_loop().create_task(self._run(), name=f"informer {self.name}")
            if self.resync > 0:
                self._resync_task = asyncio.get_running_loop().create_task(self._resync_loop())
        return self._task

    async def stop(self) -> None:
        self._stopping = True
        tasks = [t for t in (self._task, self._resync_task) if t is not None] + list(self._joins)
        self._task = self._resync_task = None
        for t in tasks:
            t.cancel()
        for t in tasks:
            try:
                await t
            except asyncio.CancelledError:
                pass
            except Exception:  # noqa: BLE001
                log.exception("informer %s: task failed", self.name)

    async def __aenter__(self) -> "Informer":
        self.start()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.stop()

    # ------------------------------------------------------------------ reflector
    async def _run(self) -> None:
        backoff = self.backoff_initial
        # started again after stop(): resume the watch where it ended (a 410 relists)
        need_list = not (self._has_synced and self.last_sync_resource_version)
        gone_in_a_row = 0
        while not self._stopping:
            try:
                if need_list:
                    await self._list_and_replace()
                    need_list = False
                if await self._watch_once():
                    backoff = self.backoff_initial
                    gone_in_a_row = 0
                    continue
                log.debug("informer %s: watch ended at once; backing off %.1fs", self.name, backoff)
            except Gone as e:
                # the resourceVersion is compacted away: only a fresh LIST can catch up
                log.info("informer %s: %s; relisting", self.name, e.message)
                need_list = True
                gone_in_a_row += 1
                if gone_in_a_row == 1:
                    continue  # relist at once; back off only if it keeps happening
            except asyncio.CancelledError:
                raise
            except (APIStatusError, TransportError) as e:
                log.warning("informer %s: %s; retrying in %.1fs", self.name, e, backoff)
            except Exception:  # noqa: BLE001 - keep the cache alive whatever happens
                log.exception("informer %s: unexpected error; retrying in %.1fs", self.name, backoff)
            await asyncio.sleep(backoff * random.uniform(1.0, 1.2))
            backoff = min(backoff * 2, self.backoff_max)

    async def _list_and_replace(self) -> None:
        """LIST (paged) and make the store equal to it, emitting the differences."""
        result = await self.resource.list_all(self.namespace, self.label_selector, self.field_selector,
                                              page_size=self.page_size)
        self.relists += 1
        rv = (result.get("metadata") or {}).get("resourceVersion") or ""
        kind = (result.get("kind") or "").removesuffix("List")
        api_version = result.get("apiVersion") or self.resource.api_version
        fresh: dict[str, Obj] = {}
        for item in result.get("items") or []:
            # list items carry no apiVersion/kind; watch events do: make them alike
            if kind and "kind" not in item:
                item = {"apiVersion": api_version, "kind": kind, **item}
            fresh[object_key(item)] = item
        async with self._lock:
            for key in [k for k in self.store.keys() if k not in fresh]:
                old = self.store._remove(key)
                if old is not None:
                    await self._emit_delete(old)
            for key, obj in fresh.items():
                old = self.store._put(key, obj)
                if old is None:
                    await self._emit_add(obj)
                elif _rv(old) != _rv(obj):
                    await self._emit_update(old, obj)
            self.last_sync_resource_version = rv
        if not self._has_synced:
            self._has_synced = True
            self._synced.set()

    async def _watch_once(self) -> bool:
        """One watch from the last resourceVersion; returns whether any event came
        (a healthy watch, so the error backoff can reset)."""
        timeout = int(self.min_watch_timeout * (1 + random.random()))
        got_any = False
        started = time.monotonic()
        async with self.resource.watch(
            self.namespace,
            resource_version=self.last_sync_resource_version or None,
            label_selector=self.label_selector,
            field_selector=self.field_selector,
            allow_watch_bookmarks=True,
            timeout_seconds=timeout,
        ) as stream:
            async for etype, obj in stream:
                got_any = True
                await self._apply(etype, obj)
        # a watch that ends at once without events is a sign of trouble: back off then
        return got_any or time.monotonic() - started > 1.0

    async def _apply(self, etype: str, obj: Obj) -> None:
        rv = _rv(obj)
        if etype == "BOOKMARK":
            if rv:
                self.last_sync_resource_version = rv
            return
        key = object_key(obj)
        async with self._lock:
            if etype == "ADDED" or etype == "MODIFIED":
                old = self.store._put(key, obj)
                if old is None:
                    await self._emit_add(obj)
                else:
                    await self._emit_update(old, obj)
            elif etype == "DELETED":
                self.store._remove(key)
                await self._emit_delete(obj)
            else:
                log.warning("informer %s: unknown watch event type %r", self.name, etype)
            if rv:
                self.last_sync_resource_version = rv

    async def _resync_loop(self) -> None:
        while True:
            await asyncio.sleep(self.resync)
            if not self._has_synced:
                continue
            async with self._lock:
                for obj in self.store.list():
                    await self._emit_update(obj, obj)

