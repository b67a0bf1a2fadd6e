"""Waiting for an object to reach a state, driven by watch events with a deadline."""

from __future__ import annotations

import asyncio
from typing import Any, Callable, Optional

from kybernetes.client import ResourceHandle

Obj = dict[str, Any]


async def wait_object(
    handle: ResourceHandle,
    name: str,
    predicate: Callable[[Optional[Obj]], bool],
    *,
    namespace: Optional[str] = None,
    timeout: float = 20.0,
) -> Optional[Obj]:
    """The object (None: absent) once predicate holds: checked on a GET, then on every
    watch event for that name after it (no polling); fails after `timeout` seconds."""
    async def run() -> Optional[Obj]:
        listed = await handle.list(namespace, field_selector=f"metadata.name={name}")
        items = listed.get("items") or []
        current: Optional[Obj] = items[0] if items else None
        if predicate(current):
            return current
        rv = listed["metadata"]["resourceVersion"]
        while True:  # a watch may end at its timeout: resume where it stopped
            async with handle.watch(namespace, resource_version=rv, name=name, allow_watch_bookmarks=True,
                                    timeout_seconds=60) as w:
                async for etype, obj in w:
                    rv = (obj.get("metadata") or {}).get("resourceVersion") or rv
                    if etype == "BOOKMARK":
                        continue
                    current = None if etype == "DELETED" else obj
                    if predicate(current):
                        return current

    return await asyncio.wait_for(run(), timeout)
