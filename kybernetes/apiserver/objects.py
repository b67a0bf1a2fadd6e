"""Objects in the datastore: key layout, encoding, resourceVersion, per-resource watch caches.

Values are stored as JSON without `metadata.resourceVersion`; the resourceVersion a
client sees is the key's mod revision, set on the way out (as upstream's etcd3 store does).
"""

from __future__ import annotations

import asyncio
from typing import Any, Callable, Optional

import orjson

from kybernetes.apiserver.latency import TimedStore
from kybernetes.registry.base import Strategy
from kybernetes.storage.interface import KeyValue, Store
from kybernetes.storage.watchcache import WatchCache

Obj = dict[str, Any]

# Hook for encryption at rest: (resource-prefix, plaintext) -> stored bytes and back.
Transformer = tuple[Callable[[str, bytes], bytes], Callable[[str, bytes], bytes]]


def resource_prefix(s: Strategy) -> str:
    """The key prefix of a resource: /registry/<resource>/ (core) or /registry/<group>/<resource>/;
    a view (`stored_as`) shares the prefix, so the keys and the watch cache, of its stored resource."""
    group, resource = (s.stored_as[0], s.stored_as[2]) if s.stored_as else (s.group, s.resource)
    return f"/registry/{group}/{resource}/" if group else f"/registry/{resource}/"


def object_key(s: Strategy, namespace: str, name: str) -> str:
    prefix = resource_prefix(s)
    return f"{prefix}{namespace}/{name}" if s.namespaced else f"{prefix}{name}"


def collection_prefix(s: Strategy, namespace: str) -> str:
    prefix = resource_prefix(s)
    return f"{prefix}{namespace}/" if (s.namespaced and namespace) else prefix


class ObjectStore:
    """Encodes objects for the Store and keeps one watch cache per resource (lazily)."""

    def __init__(self, store: Store, transformer: Optional[Transformer] = None) -> None:
        self.raw_store = store
        # the same store, with each round trip counted in the awaiting request's latency
        self.store = TimedStore(store)
        self._caches: dict[str, WatchCache] = {}
        self._cache_locks: dict[str, asyncio.Lock] = {}
        self._transformer = transformer

    # ----- encoding -----
    def encode(self, key: str, obj: Obj, s: Optional[Strategy] = None) -> bytes:
        """Stored bytes of `obj`; given the strategy `obj` was written through, a view's
        object is first converted to its stored resource's form."""
        if s is not None and s.stored_as:
            obj = s.to_storage(obj)
        meta = obj.get("metadata")
        rv = None
        if meta is not None and "resourceVersion" in meta:
            rv = meta.pop("resourceVersion")
        try:
            data = orjson.dumps(obj)
        finally:
            if rv is not None:
                meta["resourceVersion"] = rv
        if self._transformer:
            data = self._transformer[0](key, data)
        return data

    def is_stale(self, kv: KeyValue) -> bool:
        """True when the stored bytes were not written with the current encryption key, so a
        no-op update must still rewrite them (what `kubectl replace` rotation relies on)."""
        if not self._transformer:
            return False
        owner = getattr(self._transformer[0], "__self__", None)
        check = getattr(owner, "is_stale", None)
        return bool(check and check(kv.key, kv.value))

    def decode(self, kv: KeyValue, s: Optional[Strategy] = None) -> Obj:
        """The object stored at `kv`; given the strategy it is read through, in that
        resource's form (a view converts from its stored resource's form)."""
        data = kv.value
        if self._transformer:
            data = self._transformer[1](kv.key, data)
        obj = orjson.loads(data)
        obj.setdefault("metadata", {})["resourceVersion"] = str(kv.mod_revision)
        if s is not None and s.stored_as:
            obj = s.from_storage(obj)
        return obj

    async def read(self, s: Strategy, key: str) -> Optional[KeyValue]:
        """A consistent read of one key: from the resource's watch cache when it already
        reflects every write so far, else from the store (no waiting either way)."""
        cache = self._caches.get(resource_prefix(s))
        if cache is not None:
            current = await self.store.current_revision()
            try:
                await cache.wait_for(current, timeout=0)
            except (TimeoutError, asyncio.TimeoutError):
                pass
            else:
                return cache.get(key)
        return await self.store.get(key)

    async def namespace(self, name: str) -> Optional[KeyValue]:
        """The stored Namespace `name`, read consistently (from the namespaces watch cache
        when it is current, else the store): a namespace that has just started terminating
        must never look active to NamespaceLifecycle."""
        from kybernetes.api.catalog import default_catalog

        s = default_catalog().lookup("", "v1", "namespaces")
        await self.cache(s)
        return await self.read(s, f"/registry/namespaces/{name}")

    # ----- caches -----
    async def cache(self, s: Strategy) -> WatchCache:
        prefix = resource_prefix(s)
        c = self._caches.get(prefix)
        if c is not None:
            return c
        lock = self._cache_locks.setdefault(prefix, asyncio.Lock())
        async with lock:
            c = self._caches.get(prefix)
            if c is None:
                c = WatchCache(self.raw_store, prefix)
                await c.start()
                self._caches[prefix] = c
        return c

    async def start_caches(self, strategies) -> None:
        """Start every resource's watch cache now, as upstream's cacher does at start-up, so
        a list read from the store is never older than the cache a watch then uses."""
        await asyncio.gather(*(self.cache(s) for s in strategies if s.persisted))

    async def close(self) -> None:
        for c in self._caches.values():
            await c.stop()
        self._caches.clear()
