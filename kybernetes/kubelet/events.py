"""The kubelet's event recorder: core/v1 Events about pods and their containers, and about
the node itself (source kubelet/<node>), with repeats folded into one Event whose count
grows, like client-go's correlator.  Recording never blocks or fails the caller."""

from __future__ import annotations

import asyncio
import datetime
import logging
import time
from typing import Any, Optional

log = logging.getLogger("kybernetes.kubelet.events")
Obj = dict[str, Any]
NORMAL, WARNING = "Normal", "Warning"
MAX_KEYS = 4096


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def container_field_path(pod: Obj, name: str) -> str:
    spec = pod.get("spec") or {}
    if any(c.get("name") == name for c in spec.get("initContainers") or []):
        return f"spec.initContainers{{{name}}}"
    if any(c.get("name") == name for c in spec.get("ephemeralContainers") or []):
        return f"spec.ephemeralContainers{{{name}}}"
    return f"spec.containers{{{name}}}"


class EventRecorder:
    def __init__(self, client: Any, node_name: str):
        self.client = client
        self.node_name = node_name
        self.events = client.resource("", "v1", "events", namespaced=True)
        self.seen: dict[tuple, tuple[str, int]] = {}   # key -> (event name, count)
        self.tasks: set[asyncio.Task] = set()

    def pod_event(self, pod: Obj, etype: str, reason: str, message: str, container: Optional[str] = None) -> None:
        """Record an event about the pod (or one of its containers) in the background."""
        meta = pod["metadata"]
        involved: Obj = {"kind": "Pod", "namespace": meta["namespace"], "name": meta["name"],
                         "uid": meta.get("uid", ""), "apiVersion": "v1",
                         "resourceVersion": meta.get("resourceVersion", "")}
        if container:
            involved["fieldPath"] = container_field_path(pod, container)
        self._spawn(meta["namespace"], involved, etype, reason, message)

    def node_event(self, etype: str, reason: str, message: str) -> None:
        """Record an event about this node in the background.  As upstream's kubelet, the
        reference carries the node's name as its uid too and no namespace, so the Event
        lives in `default`."""
        involved: Obj = {"kind": "Node", "name": self.node_name, "uid": self.node_name}
        self._spawn("default", involved, etype, reason, message)

    def _spawn(self, ns: str, involved: Obj, etype: str, reason: str, message: str) -> None:
        t = asyncio.ensure_future(self._record(ns, involved, etype, reason, message))
        self.tasks.add(t)
        t.add_done_callback(self.tasks.discard)

    async def _record(self, ns: str, involved: Obj, etype: str, reason: str, message: str) -> None:
        key = (involved["kind"], involved["uid"], involved.get("fieldPath", ""), etype, reason, message)
        stamp = _now()
        try:
            prev = self.seen.get(key)
            if prev is not None:
                name, count = prev
                await self.events.patch(name, {"count": count + 1, "lastTimestamp": stamp}, "merge", ns)
                self.seen[key] = (name, count + 1)
                return
            name = f"{involved['name']}.{time.time_ns():x}"
            await self.events.create({
                "apiVersion": "v1", "kind": "Event",
                "metadata": {"name": name, "namespace": ns},
                "involvedObject": involved, "reason": reason, "message": message, "type": etype,
                "source": {"component": "kubelet", "host": self.node_name},
                "firstTimestamp": stamp, "lastTimestamp": stamp, "count": 1,
                "reportingComponent": "kubelet", "reportingInstance": self.node_name,
            }, ns)
            if len(self.seen) >= MAX_KEYS:
                self.seen.clear()
            self.seen[key] = (name, 1)
        except Exception as e:  # an event is best effort, as upstream
            log.debug("event %s for %s %s not recorded: %s", reason, involved["kind"], involved["name"], e)

    async def flush(self) -> None:
        """Wait for events still being written (tests, shutdown)."""
        if self.tasks:
            await asyncio.gather(*list(self.tasks), return_exceptions=True)
