"""Waiting on an object's state with a deadline, driven by watch events (no sleeps)."""

from __future__ import annotations

import asyncio
from typing import Any, Callable, Optional

from kybernetes.client import NotFound, ResourceHandle

Obj = dict[str, Any]


async def wait_for(handle: ResourceHandle, name: str, namespace: Optional[str],
                   predicate: Callable[[Optional[Obj]], bool], *, timeout: float = 30.0) -> Optional[Obj]:
    """Wait until predicate(object) holds for the named object, where the object is
    None once it is gone.  Returns that object (or None)."""
    async def run() -> Optional[Obj]:
        while True:
            try:
                obj: Optional[Obj] = await handle.get(name, namespace)
            except NotFound:
                obj = None
            if predicate(obj):
                return obj
            if obj is None:
                raise AssertionError(f"{handle.resource} {name} is gone, and that is not what was awaited")
            rv = obj["metadata"]["resourceVersion"]
            async with handle.watch(namespace, resource_version=rv, field_selector=f"metadata.name={name}",
                                    allow_watch_bookmarks=True, timeout_seconds=60) as w:
                async for etype, ev in w:
                    if etype == "BOOKMARK":
                        continue
                    current = None if etype == "DELETED" else ev
                    if predicate(current):
                        return current
                    if current is None:
                        raise AssertionError(f"{handle.resource} {name} is gone, and that is not what was awaited")

    return await asyncio.wait_for(run(), timeout)


async def wait_gone(handle: ResourceHandle, name: str, namespace: Optional[str], *, timeout: float = 30.0) -> None:
    await wait_for(handle, name, namespace, lambda o: o is None, timeout=timeout)


async def wait_listed(handle: ResourceHandle, namespace: Optional[str], predicate: Callable[[Obj], bool], *,
                      timeout: float = 30.0) -> Obj:
    """The first object of the collection (existing or arriving) for which predicate holds."""
    async def run() -> Obj:
        listed = await handle.list(namespace)
        for item in listed.get("items") or []:
            if predicate(item):
                return item
        rv = listed["metadata"]["resourceVersion"]
        while True:
            async with handle.watch(namespace, resource_version=rv, allow_watch_bookmarks=True,
                                    timeout_seconds=60) as w:
                async for etype, ev in w:
                    rv = (ev.get("metadata") or {}).get("resourceVersion") or rv
                    if etype in ("ADDED", "MODIFIED") and predicate(ev):
                        return ev

    return await asyncio.wait_for(run(), timeout)


def owner_ref(obj: Obj, **extra: Any) -> Obj:
    m = obj["metadata"]
    return {"apiVersion": obj.get("apiVersion", "v1"), "kind": obj.get("kind", "ConfigMap"), "name": m["name"],
            "uid": m["uid"], **extra}


def owner_uids(obj: Optional[Obj]) -> list[str]:
    return [o["uid"] for o in ((obj or {}).get("metadata") or {}).get("ownerReferences") or []]
