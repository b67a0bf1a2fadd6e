"""Waiting on conditions with a deadline, driven by watch events (no sleeps)."""

from __future__ import annotations

import asyncio
from typing import Any, Callable, Optional

from kybernetes.client import ResourceHandle

Obj = dict[str, Any]


async def wait_for_event(
    handle: ResourceHandle,
    predicate: Callable[[str, Obj], bool],
    *,
    resource_version: str,
    namespace: Optional[str] = None,
    field_selector: Optional[str] = None,
    timeout: float = 30.0,
) -> tuple[str, Obj]:
    """The first watch event after `resource_version` for which predicate(type, obj) holds."""
    async def run() -> tuple[str, Obj]:
        rv = resource_version
        while True:  # a watch may end (server timeout): resume where it stopped
            async with handle.watch(namespace, resource_version=rv, field_selector=field_selector,
                                    allow_watch_bookmarks=True, timeout_seconds=60) as w:
                async for etype, obj in w:
                    rv = obj.get("metadata", {}).get("resourceVersion") or rv
                    if etype != "BOOKMARK" and predicate(etype, obj):
                        return etype, obj

    return await asyncio.wait_for(run(), timeout)


def condition(obj: Obj, ctype: str) -> Optional[Obj]:
    return next((c for c in (obj.get("status") or {}).get("conditions") or [] if c.get("type") == ctype), None)
