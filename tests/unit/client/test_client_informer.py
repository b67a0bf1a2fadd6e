"""Informer over a scripted transport: paged list, watch, 410 -> relist with a diff,
resume from the last resourceVersion (bookmarks included), handlers, backoff."""

from __future__ import annotations

import asyncio
from typing import Any, Callable

from client_fakes import FakeTransport, conn_error, gone_event, json_response, obj, status_response, watch_response
from kybernetes.client import Client, Informer
from kybernetes.client.informer import Store, object_key, split_key

PATH = "/api/v1/namespaces/default/configmaps"


async def eventually(cond: Callable[[], Any], timeout: float = 2.0) -> None:
    """Wait (with a deadline) until cond() is true."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not cond():
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.001)


def page(items, rv, cont=None):
    meta = {"resourceVersion": str(rv)}
    if cont:
        meta["continue"] = cont
    # list items come without apiVersion/kind, as from a real server
    return {"kind": "ConfigMapList", "apiVersion": "v1", "metadata": meta,
            "items": [{k: v for k, v in i.items() if k not in ("apiVersion", "kind")} for i in items]}


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, str]] = []

    def add(self, o):
        self.events.append(("add", o["metadata"]["name"], o["metadata"]["resourceVersion"]))

    async def update(self, old, new):  # a coroutine handler
        self.events.append(("update", new["metadata"]["name"], new["metadata"]["resourceVersion"]))

    def delete(self, o):
        self.events.append(("delete", o["metadata"]["name"], o["metadata"]["resourceVersion"]))


def make_client(t: FakeTransport) -> Client:
    return Client("https://example.invalid", transport=t, retry_backoff=0.001)


async def test_list_watch_gone_relist_and_resume():
    t = FakeTransport()
    lists = [
        {None: page([obj("a", 1), obj("b", 2)], 10, cont="p2"), "p2": page([obj("c", 3)], 10)},
        {None: page([obj("a", 12), obj("c", 3), obj("d", 11), obj("e", 19)], 20)},
    ]
    watches = [
        watch_response([("ADDED", obj("d", 11)), ("MODIFIED", obj("a", 12)), gone_event()], split=13),
        watch_response([("DELETED", obj("c", 21)), ("BOOKMARK", {"kind": "ConfigMap", "metadata": {"resourceVersion": "25"}})]),
        watch_response([("ADDED", obj("f", 26))], hang=True),
    ]
    list_calls: list[dict] = []
    watch_calls: list[dict] = []

    def respond(req):
        p = dict(req.params)
        if p.get("watch") == "true":
            watch_calls.append(p)
            return watches.pop(0)
        list_calls.append(p)
        pages = lists[0] if len(list_calls) <= 2 else lists[1]
        return json_response(pages[p.get("continue")])

    t.route(lambda r: r.path == PATH, respond)
    rec = Recorder()
    inf = Informer(make_client(t).resource("", "v1", "configmaps"), namespace="default")
    inf.add_handlers(rec.add, rec.update, rec.delete)
    inf.start()
    try:
        assert await inf.wait_synced(2)
        await eventually(lambda: "default/f" in inf.store)
    finally:
        await inf.stop()

    # paginated first list (limit 500), then one page for the relist
    assert [c.get("limit") for c in list_calls] == ["500", "500", "500"]
    assert list_calls[1]["continue"] == "p2"
    assert "resourceVersion" not in list_calls[2]  # a fresh list after 410
    # watch from the list's rv with bookmarks; after the relist from its rv; then from the bookmark
    assert [w.get("resourceVersion") for w in watch_calls] == ["10", "20", "25"]
    assert all(w["allowWatchBookmarks"] == "true" for w in watch_calls)
    assert all(int(w["timeoutSeconds"]) >= 300 for w in watch_calls)

    assert rec.events == [
        ("add", "a", "1"), ("add", "b", "2"), ("add", "c", "3"),  # first list
        ("add", "d", "11"), ("update", "a", "12"),  # watch, then 410
        ("delete", "b", "2"), ("add", "e", "19"),  # relist: b vanished, e appeared, a/c/d unchanged
        ("delete", "c", "21"),  # second watch; bookmark moves the rv silently
        ("add", "f", "26"),  # third watch
    ]
    assert sorted(inf.store.keys()) == ["default/a", "default/d", "default/e", "default/f"]
    assert inf.get("default/a")["metadata"]["resourceVersion"] == "12"
    assert inf.get("default/a")["kind"] == "ConfigMap"  # list items get their kind back
    assert inf.relists == 2
    assert inf.last_sync_resource_version == "26"


async def test_errors_back_off_and_resume_without_relist():
    t = FakeTransport()
    lists = [page([obj("a", 1)], 5)]
    answers = [conn_error(), status_response(500, "InternalError"),
               watch_response([("MODIFIED", obj("a", 6))], hang=True)]
    watch_rvs = []

    def respond(req):
        p = dict(req.params)
        if p.get("watch") == "true":
            watch_rvs.append(p.get("resourceVersion"))
            return answers.pop(0)
        return json_response(lists[0])

    t.route(lambda r: r.path == PATH, respond)
    c = Client("https://example.invalid", transport=t, retry_backoff=0.001, max_retries=0)
    inf = Informer(c.resource("", "v1", "configmaps"), namespace="default", backoff_initial=0.001)
    seen = []
    inf.add_handlers(on_update=lambda old, new: seen.append(new["metadata"]["resourceVersion"]))
    async with inf:
        await eventually(lambda: seen == ["6"])
    assert watch_rvs == ["5", "5", "5"]
    assert inf.relists == 1


async def test_list_failure_retries_and_sync_waits():
    t = FakeTransport()
    answers = [status_response(403, "Forbidden"), json_response(page([obj("a", 1)], 3))]

    def respond(req):
        if dict(req.params).get("watch") == "true":
            return watch_response([], hang=True)
        return answers.pop(0) if len(answers) > 1 else answers[0]

    t.route(lambda r: r.path == PATH, respond)
    inf = Informer(make_client(t).resource("", "v1", "configmaps"), namespace="default", backoff_initial=0.001)
    assert not inf.has_synced
    async with inf:
        assert await inf.wait_synced(2)
        assert inf.has_synced and [o["metadata"]["name"] for o in inf.list()] == ["a"]


async def test_wait_synced_times_out():
    t = FakeTransport()

    async def never(req):
        await asyncio.Event().wait()

    t.route(lambda r: True, never)
    inf = Informer(make_client(t).resource("", "v1", "configmaps"))
    async with inf:
        assert not await inf.wait_synced(0.01)


async def test_handler_errors_do_not_stop_the_informer_and_late_handlers_replay():
    t = FakeTransport()

    def respond(req):
        if dict(req.params).get("watch") == "true":
            return watch_response([("ADDED", obj("b", 4))], hang=True)
        return json_response(page([obj("a", 1)], 3))

    t.route(lambda r: r.path == "/api/v1/configmaps", respond)
    inf = Informer(make_client(t).resource("", "v1", "configmaps"))

    def bad(o):
        raise RuntimeError("handler bug")

    inf.add_handlers(on_add=bad)
    async with inf:
        await eventually(lambda: len(inf.store) == 2)
        late: list[str] = []
        inf.add_handlers(on_add=lambda o: late.append(o["metadata"]["name"]))
        await eventually(lambda: sorted(late) == ["a", "b"])


async def test_resync_redelivers_as_updates():
    t = FakeTransport()

    def respond(req):
        if dict(req.params).get("watch") == "true":
            return watch_response([], hang=True)
        return json_response(page([obj("a", 1)], 3))

    t.route(lambda r: True, respond)
    inf = Informer(make_client(t).resource("", "v1", "configmaps"), resync=0.01)
    updates = []
    inf.add_handlers(on_update=lambda old, new: updates.append(old is new))
    async with inf:
        await eventually(lambda: len(updates) >= 2)
    assert all(updates)


async def test_selectors_and_namespace_passed_through():
    t = FakeTransport()
    reqs = []

    def respond(req):
        reqs.append(dict(req.params))
        if dict(req.params).get("watch") == "true":
            return watch_response([], hang=True)
        return json_response(page([], 3))

    t.route(lambda r: r.path == PATH, respond)
    inf = Informer(make_client(t).resource("", "v1", "configmaps"), "default", "app=x", field_selector="metadata.name=y")
    async with inf:
        await eventually(lambda: len(reqs) == 2)
    assert all(r["labelSelector"] == "app=x" and r["fieldSelector"] == "metadata.name=y" for r in reqs)


def test_store_indexes():
    s = Store()
    s._put("ns1/a", obj("a", 1, "ns1"))
    s._put("ns2/b", obj("b", 1, "ns2"))
    s._put("c", obj("c", 1, None))
    assert [o["metadata"]["name"] for o in s.by_namespace("ns1")] == ["a"]
    s.add_index("name-len", lambda o: [str(len(o["metadata"]["name"]))])
    assert len(s.by_index("name-len", "1")) == 3
    s._put("ns1/a", obj("a", 2, "ns2"))  # moved namespace (not possible in k8s, but the index must follow)
    assert s.by_namespace("ns1") == [] and len(s.by_namespace("ns2")) == 2
    s._remove("ns2/b")
    assert [o["metadata"]["name"] for o in s.by_namespace("ns2")] == ["a"]
    assert len(s) == 2


def test_keys():
    assert object_key(obj("a", 1, "ns")) == "ns/a"
    assert object_key(obj("n", 1, None)) == "n"
    assert split_key("ns/a") == ("ns", "a")
    assert split_key("n") == ("", "n")


async def test_stop_is_prompt():
    t = FakeTransport()

    def respond(req):
        if dict(req.params).get("watch") == "true":
            return watch_response([], hang=True)
        return json_response(page([], 3))

    t.route(lambda r: True, respond)
    inf = Informer(make_client(t).resource("", "v1", "configmaps"))
    inf.start()
    await inf.wait_synced(1)
    await asyncio.wait_for(inf.stop(), 1)
