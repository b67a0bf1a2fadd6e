"""The collector's own life cycle against a real server, run in this process (the
server runs its own collector too; both only observe here)."""

from __future__ import annotations

import asyncio

from gc_helpers import owner_ref
from kybernetes.controllers.garbagecollector import GarbageCollector
from kybernetes.controllers.manager import ControllerManager


async def wait_graph(gc: GarbageCollector, uid: str, present: bool, timeout: float = 10.0) -> None:
    """Wait for the graph to (no longer) hold uid, woken by the collector's informers."""
    changed = asyncio.Event()
    for m in gc._monitors.values():
        m.informer.add_handlers(lambda *_: changed.set(), lambda *_: changed.set(), lambda *_: changed.set())
    async with asyncio.timeout(timeout):
        while gc.graph_has_uid(uid) != present:
            changed.clear()
            await changed.wait()


async def test_discovers_monitors_and_builds_the_graph(client, namespace):
    manager = ControllerManager(client, [GarbageCollector])
    await manager.start()
    try:
        gc = manager.controller("garbagecollector")
        assert isinstance(gc, GarbageCollector)
        assert await gc.wait_running(30)
        monitored = set(gc.monitored)
        assert {("", "v1", "configmaps"), ("", "v1", "namespaces"), ("apps", "v1", "deployments"),
                ("rbac.authorization.k8s.io", "v1", "clusterroles")} <= monitored
        assert not {gvr for gvr in monitored if gvr[2] == "events"}  # ignored, as upstream
        assert gc.mapper.resource_for("v1", "Event").resource == "events"
        ns = await client.resource("", "v1", "namespaces").get(namespace)
        assert gc.graph_has_uid(ns["metadata"]["uid"])  # from the initial lists

        cms = client.resource("", "v1", "configmaps")
        owner = await cms.create({"metadata": {"name": "owner", "namespace": namespace}})
        dep = await cms.create({"metadata": {"name": "dep", "namespace": namespace, "ownerReferences": [
            owner_ref({"apiVersion": "v1", "kind": "ConfigMap", **owner})]}})
        await wait_graph(gc, dep["metadata"]["uid"], True)
        node = gc.graph.node(owner["metadata"]["uid"])
        assert node is not None and {d.identity.name for d in node.dependents} == {"dep"}
        await cms.delete("owner", namespace)
        await wait_graph(gc, dep["metadata"]["uid"], False)  # collected (by one collector or the other)
    finally:
        await manager.stop()
    assert all(m.informer._task is None for m in gc._monitors.values())
    assert not gc._side_tasks
