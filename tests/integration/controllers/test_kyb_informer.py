"""Informers against a real server: initial list, then adds, updates and deletes from the
watch, namespace/label narrowing, and the shared informer factory."""

from __future__ import annotations

import asyncio
from typing import Any, Callable

from kybernetes.client import Informer
from kybernetes.controllers.base import InformerFactory

NOT_ROOT_CA = "metadata.name!=kube-root-ca.crt"


class Events:
    """Handler calls, with a way to wait (deadline) until a predicate over them holds."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, Any]] = []
        self._changed = asyncio.Event()

    def _record(self, kind: str, obj: dict) -> None:
        self.seen.append((kind, obj["metadata"]["name"], obj))
        self._changed.set()

    def add(self, obj):
        self._record("add", obj)

    def update(self, old, new):
        self._record("update", new)

    async def delete(self, obj):
        self._record("delete", obj)

    async def wait(self, pred: Callable[[list], bool], timeout: float = 20) -> None:
        async def loop():
            while not pred(self.seen):
                self._changed.clear()
                await self._changed.wait()

        await asyncio.wait_for(loop(), timeout)

    def kinds(self, name: str) -> list[str]:
        return [k for k, n, _ in self.seen if n == name]


async def test_informer_sees_adds_updates_deletes(client, namespace):
    cms = client.resource("", "v1", "configmaps")
    await cms.create({"metadata": {"name": "pre"}, "data": {"a": "1"}}, namespace=namespace)
    ev = Events()
    # the root-CA publisher adds kube-root-ca.crt to every namespace; look past it
    inf = Informer(cms, namespace=namespace, field_selector=NOT_ROOT_CA)
    inf.add_handlers(ev.add, ev.update, ev.delete)
    async with inf:
        assert await inf.wait_synced(20)
        assert inf.has_synced
        assert inf.get(f"{namespace}/pre")["data"] == {"a": "1"}
        assert ev.kinds("pre") == ["add"]

        await cms.create({"metadata": {"name": "new"}}, namespace=namespace)
        await ev.wait(lambda s: "add" in [k for k, n, _ in s if n == "new"])
        await cms.patch("pre", {"data": {"a": "2"}}, namespace=namespace)
        await ev.wait(lambda s: any(k == "update" and n == "pre" and o["data"]["a"] == "2" for k, n, o in s))
        assert inf.get(f"{namespace}/pre")["data"] == {"a": "2"}
        await cms.delete("new", namespace=namespace)
        await ev.wait(lambda s: "delete" in [k for k, n, _ in s if n == "new"])
        assert inf.get(f"{namespace}/new") is None
        assert [o["metadata"]["name"] for o in inf.by_namespace(namespace)] == ["pre"]
    assert ev.kinds("new") == ["add", "delete"]


async def test_informer_label_selector_and_all_namespaces(client, namespace):
    cms = client.resource("", "v1", "configmaps")
    ev = Events()
    inf = Informer(cms, label_selector="team=blue")
    inf.add_handlers(ev.add, ev.update, ev.delete)
    async with inf:
        assert await inf.wait_synced(20)
        await cms.create({"metadata": {"name": "red", "labels": {"team": "red"}}}, namespace=namespace)
        await cms.create({"metadata": {"name": "blue", "labels": {"team": "blue"}}}, namespace=namespace)
        await ev.wait(lambda s: any(n == "blue" for _, n, _ in s))
        # an object leaving the selection is a delete for this informer
        await cms.patch("blue", {"metadata": {"labels": {"team": "green"}}}, namespace=namespace)
        await ev.wait(lambda s: any(k == "delete" and n == "blue" for k, n, _ in s))
    assert not any(n == "red" for _, n, _ in ev.seen)
    assert inf.get(f"{namespace}/blue") is None


async def test_informer_factory_shares(client, namespace):
    f = InformerFactory(client)
    a = f.informer("", "v1", "configmaps", namespace=namespace)
    b = f.informer("", "v1", "configmaps", namespace=namespace)
    c = f.informer("", "v1", "secrets", namespace=namespace)
    assert a is b and a is not c
    f.start()
    try:
        assert await f.wait_synced(20)
        got = asyncio.Event()
        a.add_handlers(on_add=lambda o: got.set() if o["metadata"]["name"] == "shared" else None)
        await client.resource("", "v1", "configmaps").create({"metadata": {"name": "shared"}}, namespace=namespace)
        await asyncio.wait_for(got.wait(), 20)
    finally:
        await f.stop()


async def test_restart_resumes_and_410_relists_against_server(client, namespace):
    cms = client.resource("", "v1", "configmaps")
    for n in ("a", "b"):
        await cms.create({"metadata": {"name": n}}, namespace=namespace)
    ev = Events()
    # the root-CA publisher adds kube-root-ca.crt to every namespace; look past it
    inf = Informer(cms, namespace=namespace, field_selector=NOT_ROOT_CA)
    inf.add_handlers(ev.add, ev.update, ev.delete)
    inf.start()
    try:
        assert await inf.wait_synced(20)
        assert inf.relists == 1

        # changes made while stopped arrive through the resumed watch: nothing skipped
        await inf.stop()
        await cms.delete("a", namespace=namespace)
        await cms.create({"metadata": {"name": "c"}}, namespace=namespace)
        inf.start()
        await ev.wait(lambda s: ("delete", "a") in [(k, n) for k, n, _ in s] and ("add", "c") in [(k, n) for k, n, _ in s])
        assert inf.relists == 1

        # a resourceVersion the server no longer has (as after compaction): 410 -> relist,
        # and the differences come out as events
        await inf.stop()
        await cms.delete("b", namespace=namespace)
        await cms.patch("c", {"data": {"x": "1"}}, namespace=namespace)
        await cms.create({"metadata": {"name": "d"}}, namespace=namespace)
        inf.last_sync_resource_version = "1"
        inf.start()
        await ev.wait(lambda s: {("delete", "b"), ("update", "c"), ("add", "d")} <= {(k, n) for k, n, _ in s})
        assert inf.relists == 2
        assert sorted(o["metadata"]["name"] for o in inf.list()) == ["c", "d"]
        assert int(inf.last_sync_resource_version) > 1
    finally:
        await inf.stop()
