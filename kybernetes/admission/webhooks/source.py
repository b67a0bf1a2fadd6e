"""The webhooks currently configured, from the watch caches of the two configuration
resources (upstream's configuration managers over informers): configurations in name
order, webhooks in their listed order, re-read only when a configuration changed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kybernetes.admission import lookup
from kybernetes.apiserver.objects import ObjectStore, collection_prefix

Obj = dict[str, Any]
GROUP, VERSION = "admissionregistration.k8s.io", "v1"


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
    """The webhooks of one configuration resource (mutating or validating)."""

    def __init__(self, objects: ObjectStore, resource: str) -> None:
        self.objects = objects
        self.strategy = lookup.strategy(GROUP, VERSION, resource)
        self._seen: tuple = ()
        self._hooks: list[Hook] = []

    async def hooks(self) -> list[Hook]:
        cache = await self.objects.cache(self.strategy)
        kvs = cache.list(prefix=collection_prefix(self.strategy, "")).items
        signature = tuple((kv.key, kv.mod_revision) for kv in kvs)
        if signature != self._seen:
            configs = sorted((self.objects.decode(kv) for kv in kvs), key=lambda o: o["metadata"]["name"])
            self._hooks = [Hook(c["metadata"]["name"], i, h)
                           for c in configs for i, h in enumerate(c.get("webhooks") or [])]
            self._seen = signature
        return self._hooks
