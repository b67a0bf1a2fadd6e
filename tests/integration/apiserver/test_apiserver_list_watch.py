"""LIST and WATCH semantics of upstream kube-apiserver: resourceVersion /
resourceVersionMatch, limit / continue (consistent snapshots), and watch streams
(JSON lines, resume from a resourceVersion, selectors, bookmarks, initial events,
410 Expired)."""

from __future__ import annotations

import asyncio
import time

import pytest

from apiserver_helpers import AUTO_CREATED

INITIAL_EVENTS_END = "k8s.io/initial-events-end"


def names(lst: dict) -> list[str]:
    """Item names, past objects controllers create in every namespace by themselves."""
    return [n for n in raw_names(lst) if n not in AUTO_CREATED]


def raw_names(lst: dict) -> list[str]:
    return [i["metadata"]["name"] for i in lst["items"]]


def rv(obj: dict) -> int:
    return int(obj["metadata"]["resourceVersion"])


async def poll(fn, *, timeout: float = 10.0, what: str = "condition"):
    """Call async fn until it returns something truthy (a condition with a deadline)."""
    deadline = time.monotonic() + timeout
    while True:
        out = await fn()
        if out:
            return out
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


# ---------------------------------------------------------------------- resourceVersion on LIST
async def test_list_resource_version_unset_is_consistent(api, ns):
    """resourceVersion="" is a consistent read: every acknowledged write is visible at once."""
    url = f"/api/v1/namespaces/{ns}/configmaps"
    for _ in range(15):
        cm = await api.configmap(ns)
        lst = (await api.get(url)).expect(200)
        assert cm["metadata"]["name"] in names(lst)
        assert int(lst["metadata"]["resourceVersion"]) >= rv(cm)
        (await api.delete(f"{url}/{cm['metadata']['name']}")).expect(200)
        lst = (await api.get(url, params={"resourceVersion": ""})).expect(200)
        assert cm["metadata"]["name"] not in names(lst)


async def test_list_resource_version_zero_is_any(api, ns):
    url = f"/api/v1/namespaces/{ns}/configmaps"
    cm = await api.configmap(ns)
    lst = (await api.get(url, params={"resourceVersion": "0"})).expect(200)
    assert lst["kind"] == "ConfigMapList" and int(lst["metadata"]["resourceVersion"]) > 0

    async def seen():
        got = (await api.get(url, params={"resourceVersion": "0"})).expect(200)
        return cm["metadata"]["name"] in names(got)

    await poll(seen, what="rv=0 list to catch up")


async def test_list_exact_shows_the_old_state(api, ns):
    url = f"/api/v1/namespaces/{ns}/configmaps"
    a = await api.configmap(ns, "a", {"v": "1"})
    rv1 = a["metadata"]["resourceVersion"]
    a2 = (await api.put(f"{url}/a", dict(a, data={"v": "2"}))).expect(200)
    rv2 = a2["metadata"]["resourceVersion"]
    b = await api.configmap(ns, "b")
    (await api.delete(f"{url}/a")).expect(200)

    at1 = (await api.get(url, params={"resourceVersion": rv1, "resourceVersionMatch": "Exact"})).expect(200)
    assert at1["metadata"]["resourceVersion"] == rv1
    assert names(at1) == ["a"] and at1["items"][0]["data"] == {"v": "1"}
    assert at1["items"][0]["metadata"]["resourceVersion"] == rv1

    at2 = (await api.get(url, params={"resourceVersion": rv2, "resourceVersionMatch": "Exact"})).expect(200)
    assert at2["metadata"]["resourceVersion"] == rv2
    assert names(at2) == ["a"] and at2["items"][0]["data"] == {"v": "2"}

    now = (await api.get(url)).expect(200)
    assert "a" not in names(now) and "b" in names(now)
    assert int(now["metadata"]["resourceVersion"]) >= rv(b)

    # Exact + limit pages through the old snapshot too
    page = (await api.get(url, params={"resourceVersion": rv2, "resourceVersionMatch": "Exact",
                                       "limit": "1"})).expect(200)
    assert names(page) == ["a"] and page["metadata"]["resourceVersion"] == rv2


async def test_list_not_older_than(api, ns):
    url = f"/api/v1/namespaces/{ns}/configmaps"
    cm = await api.configmap(ns)
    lst = (await api.get(url, params={"resourceVersion": cm["metadata"]["resourceVersion"],
                                      "resourceVersionMatch": "NotOlderThan"})).expect(200)
    assert int(lst["metadata"]["resourceVersion"]) >= rv(cm)
    assert cm["metadata"]["name"] in names(lst)
    # without resourceVersionMatch a non-zero resourceVersion also means "not older than"
    lst = (await api.get(url, params={"resourceVersion": cm["metadata"]["resourceVersion"]})).expect(200)
    assert int(lst["metadata"]["resourceVersion"]) >= rv(cm) and cm["metadata"]["name"] in names(lst)


@pytest.mark.parametrize("params,detail", [
    ({"resourceVersionMatch": "Exact"}, "resourceVersionMatch is forbidden unless resourceVersion is provided"),
    ({"resourceVersionMatch": "Exact", "resourceVersion": "0"},
     'resourceVersionMatch "exact" is forbidden for resourceVersion "0"'),
    ({"resourceVersionMatch": "Sometimes", "resourceVersion": "5"}, 'Unsupported value: "Sometimes"'),
])
async def test_invalid_list_options_are_422(api, ns, params, detail):
    st = (await api.get(f"/api/v1/namespaces/{ns}/configmaps", params=params)).status_obj(422, "Invalid")
    assert st["details"]["kind"] == "ListOptions" and st["details"]["group"] == "meta.k8s.io"
    assert [c["field"] for c in st["details"]["causes"]] == ["resourceVersionMatch"]
    assert detail in st["message"]


async def test_get_object_resource_version(api, ns):
    cm = await api.configmap(ns)
    url = f"/api/v1/namespaces/{ns}/configmaps/{cm['metadata']['name']}"
    got = (await api.get(url, params={"resourceVersion": "0"})).expect(200)
    assert got["metadata"]["uid"] == cm["metadata"]["uid"]
    got = (await api.get(url, params={"resourceVersion": cm["metadata"]["resourceVersion"]})).expect(200)
    assert got["metadata"]["resourceVersion"] == cm["metadata"]["resourceVersion"]


# ---------------------------------------------------------------------- pagination
async def test_pagination_is_a_consistent_snapshot(api, ns):
    url = f"/api/v1/namespaces/{ns}/configmaps"
    for i in range(7):
        await api.configmap(ns, f"item-{i:02d}", {"i": str(i)})
    p1 = (await api.get(url, params={"limit": "3"})).expect(200)
    snap_rv = p1["metadata"]["resourceVersion"]
    snapshot = (await api.get(url, params={"resourceVersion": snap_rv, "resourceVersionMatch": "Exact"})).expect(200)
    expected = raw_names(snapshot)  # the 7 items (and anything a controller put there), in key order
    total = len(expected)
    assert expected == sorted(expected) and total >= 7
    assert raw_names(p1) == expected[:3]
    assert p1["metadata"]["continue"]
    assert p1["metadata"]["remainingItemCount"] == total - 3

    # writes between pages do not show up in later pages
    (await api.delete(f"{url}/item-04")).expect(200)
    (await api.patch(f"{url}/item-05", {"data": {"i": "changed"}})).expect(200)
    await api.configmap(ns, "item-03a")
    await api.configmap(ns, "zzz-new")

    seen = list(raw_names(p1))
    token = p1["metadata"]["continue"]
    pages = 1
    while token:
        page = (await api.get(url, params={"limit": "3", "continue": token})).expect(200)
        pages += 1
        assert page["metadata"]["resourceVersion"] == snap_rv, "every page belongs to the first page's snapshot"
        seen += raw_names(page)
        token = page["metadata"].get("continue", "")
        if token:
            assert page["metadata"]["remainingItemCount"] == total - len(seen)
        else:
            assert "remainingItemCount" not in page["metadata"]
        for item in page["items"]:
            if item["metadata"]["name"] == "item-05":
                assert item["data"] == {"i": "5"}, "the snapshot shows the old content"
        assert pages < 10
    assert seen == expected
    assert "item-04" in seen and "item-03a" not in seen and "zzz-new" not in seen

    now = raw_names((await api.get(url)).expect(200))
    assert "item-04" not in now and "item-03a" in now and "zzz-new" in now


async def test_pagination_with_selector_has_no_remaining_count(api, ns):
    url = f"/api/v1/namespaces/{ns}/configmaps"
    for i in range(5):
        await api.configmap(ns, f"sel-{i}", labels={"pick": "yes" if i % 2 == 0 else "no"})
    p1 = (await api.get(url, params={"limit": "2", "labelSelector": "pick=yes"})).expect(200)
    assert names(p1) == ["sel-0", "sel-2"]
    assert p1["metadata"].get("continue")
    assert "remainingItemCount" not in p1["metadata"]
    p2 = (await api.get(url, params={"limit": "2", "labelSelector": "pick=yes",
                                     "continue": p1["metadata"]["continue"]})).expect(200)
    assert names(p2) == ["sel-4"]
    assert not p2["metadata"].get("continue")


async def test_limit_larger_than_collection(api, ns):
    await api.configmap(ns, "only")
    lst = (await api.get(f"/api/v1/namespaces/{ns}/configmaps", params={"limit": "500"})).expect(200)
    assert "only" in names(lst)
    assert not lst["metadata"].get("continue") and "remainingItemCount" not in lst["metadata"]


async def test_continue_with_bad_token_is_400(api, ns):
    url = f"/api/v1/namespaces/{ns}/configmaps"
    (await api.get(url, params={"limit": "1", "continue": "garbage"})).status_obj(400, "BadRequest")
    (await api.get(url, params={"limit": "1", "continue": "!!not base64!!"})).status_obj(400, "BadRequest")


# ---------------------------------------------------------------------- watch
async def test_watch_from_resource_version_gets_exactly_the_later_events(api, ns):
    url = f"/api/v1/namespaces/{ns}/configmaps"
    a = await api.configmap(ns, "a", {"v": "1"})
    start = a["metadata"]["resourceVersion"]
    a2 = (await api.put(f"{url}/a", dict(a, data={"v": "2"}))).expect(200)
    b = await api.configmap(ns, "b")
    (await api.delete(f"{url}/a")).expect(200)

    async with api.watch(url, {"resourceVersion": start}) as w:
        assert w.resp.headers["Content-Type"].startswith("application/json")
        evs = [await w.next() for _ in range(3)]
        assert [(e["type"], e["object"]["metadata"]["name"]) for e in evs] == [
            ("MODIFIED", "a"), ("ADDED", "b"), ("DELETED", "a")]
        assert evs[0]["object"]["data"] == {"v": "2"}
        assert evs[0]["object"]["metadata"]["resourceVersion"] == a2["metadata"]["resourceVersion"]
        assert evs[1]["object"]["metadata"]["resourceVersion"] == b["metadata"]["resourceVersion"]
        assert evs[0]["object"]["kind"] == "ConfigMap" and evs[0]["object"]["apiVersion"] == "v1"
        revs = [rv(e["object"]) for e in evs]
        assert revs == sorted(revs) and revs[0] > int(start)
        # live events follow, with nothing in between
        c = await api.configmap(ns, "c")
        ev = await w.next()
        assert (ev["type"], ev["object"]["metadata"]["name"]) == ("ADDED", "c")
        assert ev["object"]["metadata"]["uid"] == c["metadata"]["uid"]


async def test_watch_without_resource_version_starts_with_the_current_state(api, ns):
    url = f"/api/v1/namespaces/{ns}/configmaps"
    cm = await api.configmap(ns, "existing")
    async with api.watch(url, {}) as w:
        ev = await w.next()
        assert ev["type"] == "ADDED" and ev["object"]["metadata"]["name"] == "existing"
        assert ev["object"]["metadata"]["uid"] == cm["metadata"]["uid"]
        await api.configmap(ns, "later")
        ev = await w.next()
        assert ev["type"] == "ADDED" and ev["object"]["metadata"]["name"] == "later"


async def test_watch_one_object_by_field_selector(api, ns):
    url = f"/api/v1/namespaces/{ns}/configmaps"
    a = await api.configmap(ns, "a")
    await api.configmap(ns, "b")
    async with api.watch(url, {"resourceVersion": a["metadata"]["resourceVersion"],
                               "fieldSelector": "metadata.name=a"}) as w:
        (await api.patch(f"{url}/b", {"data": {"x": "1"}})).expect(200)
        (await api.patch(f"{url}/a", {"data": {"x": "2"}})).expect(200)
        ev = await w.next()
        assert (ev["type"], ev["object"]["metadata"]["name"]) == ("MODIFIED", "a")


async def test_label_selector_watch_sees_leaving_as_deleted(api, ns):
    url = f"/api/v1/namespaces/{ns}/configmaps"
    cm = await api.configmap(ns, "mover", labels={"app": "x"})
    async with api.watch(url, {"resourceVersion": cm["metadata"]["resourceVersion"], "labelSelector": "app=x"}) as w:
        left = (await api.patch(f"{url}/mover", {"metadata": {"labels": {"app": "y"}}})).expect(200)
        ev = await w.next()
        assert ev["type"] == "DELETED" and ev["object"]["metadata"]["name"] == "mover"
        assert ev["object"]["metadata"]["resourceVersion"] == left["metadata"]["resourceVersion"]
        # an object outside the selection changing is not seen; coming back is ADDED
        (await api.patch(f"{url}/mover", {"data": {"q": "1"}})).expect(200)
        back = (await api.patch(f"{url}/mover", {"metadata": {"labels": {"app": "x"}}})).expect(200)
        ev = await w.next()
        assert ev["type"] == "ADDED" and ev["object"]["metadata"]["labels"] == {"app": "x"}
        assert ev["object"]["metadata"]["resourceVersion"] == back["metadata"]["resourceVersion"]
        (await api.delete(f"{url}/mover")).expect(200)
        ev = await w.next()
        assert ev["type"] == "DELETED"


async def test_label_selector_deleted_event_carries_the_previous_content(api, ns):
    url = f"/api/v1/namespaces/{ns}/configmaps"
    cm = await api.configmap(ns, "mover", {"v": "old"}, labels={"app": "x"})
    async with api.watch(url, {"resourceVersion": cm["metadata"]["resourceVersion"], "labelSelector": "app=x"}) as w:
        left = (await api.patch(f"{url}/mover", {"metadata": {"labels": {"app": "y"}},
                                                 "data": {"v": "new"}})).expect(200)
        ev = await w.next()
        assert ev["type"] == "DELETED"
        assert ev["object"]["metadata"]["labels"] == {"app": "x"} and ev["object"]["data"] == {"v": "old"}
        assert ev["object"]["metadata"]["resourceVersion"] == left["metadata"]["resourceVersion"]


async def test_watch_timeout_ends_the_stream(api, ns):
    url = f"/api/v1/namespaces/{ns}/configmaps"
    cm = await api.configmap(ns)
    t0 = time.monotonic()
    async with api.watch(url, {"resourceVersion": cm["metadata"]["resourceVersion"], "allowWatchBookmarks": "true",
                               "timeoutSeconds": "1"}) as w:
        rest = await w.end(timeout=15)
    elapsed = time.monotonic() - t0
    assert 0.9 <= elapsed < 15, elapsed
    for ev in rest:
        assert ev["type"] == "BOOKMARK", ev
        assert ev["object"]["kind"] == "ConfigMap" and int(ev["object"]["metadata"]["resourceVersion"]) >= rv(cm)


async def test_send_initial_events_then_bookmark_then_live(api, ns):
    url = f"/api/v1/namespaces/{ns}/configmaps"
    created = {}
    for n in ("i1", "i2", "i3"):
        created[n] = await api.configmap(ns, n)
    async with api.watch(url, {"sendInitialEvents": "true", "resourceVersionMatch": "NotOlderThan",
                               "allowWatchBookmarks": "true"}) as w:
        added = {}
        while True:
            ev = await w.next()
            assert ev is not None, "stream ended before the initial-events-end bookmark"
            if ev["type"] == "BOOKMARK":
                if (ev["object"]["metadata"].get("annotations") or {}).get(INITIAL_EVENTS_END) == "true":
                    break
                continue
            assert ev["type"] == "ADDED", ev
            added[ev["object"]["metadata"]["name"]] = ev["object"]
        assert set(created) <= set(added)
        for n, obj in created.items():
            assert added[n]["metadata"]["uid"] == obj["metadata"]["uid"]
        bm = ev["object"]
        assert bm["kind"] == "ConfigMap" and bm["apiVersion"] == "v1"
        assert bm["metadata"]["annotations"] == {INITIAL_EVENTS_END: "true"}
        assert int(bm["metadata"]["resourceVersion"]) >= max(rv(o) for o in created.values())

        live = await api.configmap(ns, "live")
        ev = await w.next()
        while ev["type"] == "BOOKMARK":
            ev = await w.next()
        assert ev["type"] == "ADDED" and ev["object"]["metadata"]["name"] == "live"
        assert ev["object"]["metadata"]["resourceVersion"] == live["metadata"]["resourceVersion"]


async def test_send_initial_events_requires_not_older_than(api, ns):
    r = await api.get(f"/api/v1/namespaces/{ns}/configmaps",
                      params={"watch": "1", "sendInitialEvents": "true", "allowWatchBookmarks": "true"})
    st = r.status_obj(422, "Invalid")
    assert "resourceVersionMatch" in [c["field"] for c in st["details"]["causes"]]


async def test_watch_from_too_old_resource_version_is_410_expired_event(api, ns):
    url = f"/api/v1/namespaces/{ns}/configmaps"
    for _ in range(3):
        await api.configmap(ns)
    async with api.watch(url, {"resourceVersion": "1"}) as w:
        ev = await w.next()
        assert ev is not None and ev["type"] == "ERROR", ev
        st = ev["object"]
        assert st["kind"] == "Status" and st["apiVersion"] == "v1"
        assert st["status"] == "Failure" and st["code"] == 410 and st["reason"] == "Expired"
        assert st["message"].startswith("too old resource version: 1")
        assert await w.end(timeout=10) == []



# ---------------------------------------------------------------------- the official client
async def test_official_client_pages_with_continue(k8s, api, ns):
    from kubernetes import client

    for i in range(5):
        await api.configmap(ns, f"pc-{i}")

    def page_all():
        core = client.CoreV1Api(k8s)
        seen, token, rvs = [], None, set()
        while True:
            kw = {"limit": 2}
            if token:
                kw["_continue"] = token
            lst = core.list_namespaced_config_map(ns, **kw)
            seen += [i.metadata.name for i in lst.items]
            rvs.add(lst.metadata.resource_version)
            token = lst.metadata._continue
            if not token:
                return seen, rvs

    seen, rvs = await asyncio.to_thread(page_all)
    assert [n for n in seen if n.startswith("pc-")] == [f"pc-{i}" for i in range(5)]
    assert len(rvs) == 1


async def test_official_client_watch_too_old_raises_410(k8s, api, ns):
    from kubernetes import client, watch
    from kubernetes.client.exceptions import ApiException

    await api.configmap(ns)

    def stream():
        w = watch.Watch()
        try:
            for _ in w.stream(client.CoreV1Api(k8s).list_namespaced_config_map, ns, resource_version="1",
                              timeout_seconds=10):
                pass
        finally:
            w.stop()

    with pytest.raises(ApiException) as e:
        await asyncio.to_thread(stream)
    assert e.value.status == 410
    assert "Expired" in str(e.value.reason)
