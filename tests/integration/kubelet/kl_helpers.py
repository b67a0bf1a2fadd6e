"""Helpers of the kubelet suites."""

from __future__ import annotations

import asyncio
import time


async def wait_for(fn, timeout=60.0, interval=0.2):
    """Poll `fn` (pod state inside containerd has no watch) until truthy, with a deadline."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = await fn()
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"condition not met in {timeout}s; last={last!r}")


async def pod_events(client, name, namespace="default"):
    """(type, reason, message, fieldPath, count) of the events about one pod."""
    evs = await client.resource("", "v1", "events", namespaced=True).list(namespace)
    return [(e["type"], e["reason"], e["message"], e["involvedObject"].get("fieldPath", ""), e.get("count"))
            for e in evs["items"] if e["involvedObject"].get("name") == name
            and e["involvedObject"].get("kind") == "Pod"]
