"""Admission configuration read from the apiserver's watch caches (upstream's configuration
managers over informers): decoded once per change, in name order."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kybernetes.admission import lookup
from kybernetes.apiserver.objects import ObjectStore, collection_prefix

Obj = dict[str, Any]
GROUP, VERSION = "admissionregistration.k8s.io", "v1"


class CachedObjects:
    """Every object of one cluster-scoped admissionregistration resource, as the watch cache
    holds it; re-decoded only when an object changed."""

    def __init__(self, objects: ObjectStore, resource: str) -> None:
        self.objects = objects
        self.strategy = lookup.strategy(GROUP, VERSION, resource)
        self._seen: tuple = ()
        self._items: list[Obj] = []
        self._at: tuple = ()  # (cache, revision) last looked at
        self.changed = 0  # bumped on every re-decode, so derived views know to rebuild

    async def items(self) -> list[Obj]:
        cache = await self.objects.cache(self.strategy)
        at = (cache, cache.revision)
        if at == self._at:
            return self._items  # the cache has not moved: nothing can have changed
        self._at = at
        kvs = cache.list(prefix=collection_prefix(self.strategy, "")).items
        signature = tuple((kv.key, kv.mod_revision) for kv in kvs)
        if signature != self._seen:
            self._items = sorted((self.objects.decode(kv) for kv in kvs), key=lambda o: o["metadata"]["name"])
            self._seen = signature
            self.changed += 1
        return self._items


@dataclass(frozen=True)
class Hook:
    """One webhook of one configuration."""

    configuration: str
    index: int  # position within its configuration
    spec: Obj

    @property
    def name(self) -> str:
        return self.spec.get("name", "")


class HookSource:
    """The webhooks of one configuration resource (mutating or validating): configurations
    in name order, webhooks in their listed order."""

    def __init__(self, objects: ObjectStore, resource: str) -> None:
        self._configs = CachedObjects(objects, resource)
        self._built = -1
        self._hooks: list[Hook] = []

    async def hooks(self) -> list[Hook]:
        configs = await self._configs.items()
        if self._built != self._configs.changed:
            self._hooks = [Hook(c["metadata"]["name"], i, h)
                           for c in configs for i, h in enumerate(c.get("webhooks") or [])]
            self._built = self._configs.changed
        return self._hooks
